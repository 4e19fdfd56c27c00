"""Production monitoring: one compact row per input the monitor saw, and one per evaluation of the
drift tests (both pruned to a bounded size by the monitor).

Revision ID: 0004
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "monitoring_samples",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_digest", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_monitoring_samples_model", "monitoring_samples", ["model_digest", "id"])
    op.create_table(
        "monitoring_evaluations",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_digest", sa.String(length=64), nullable=False),
        sa.Column("last_sample_id", sa.BigInteger(), nullable=False),
        sa.Column("window_size", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_monitoring_evaluations_model", "monitoring_evaluations", ["model_digest", "id"])


def downgrade() -> None:
    op.drop_index("ix_monitoring_evaluations_model", table_name="monitoring_evaluations")
    op.drop_table("monitoring_evaluations")
    op.drop_index("ix_monitoring_samples_model", table_name="monitoring_samples")
    op.drop_table("monitoring_samples")
