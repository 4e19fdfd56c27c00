"""Idempotency keys (a retried POST /predict or /predict/batch returns the record it made the first
time) and the caller's reference on a prediction (sealed, with an HMAC for exact-match search).

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("prediction_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("caller", "key", "item"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.add_column(sa.Column("reference_nonce", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("reference_ciphertext", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("reference_key_id", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("reference_hmac", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_predictions_reference_hmac", ["reference_hmac"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.drop_index("ix_predictions_reference_hmac")
        for column in ("reference_hmac", "reference_key_id", "reference_ciphertext", "reference_nonce"):
            batch_op.drop_column(column)
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
