"""Shadow predictions: what a shadow model said about an input another model answered.

Which arm answered a prediction (and its registry version and package digest) is in the prediction
record's ``extra["model"]``, covered by its digest; this table holds only the silent answers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shadow_predictions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("prediction_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("model_digest", sa.String(length=64), nullable=False),
        sa.Column("registry_version", sa.String(length=32), nullable=True),
        sa.Column("label", sa.String(length=16), nullable=True),
        sa.Column("p_pneumonia", sa.Double(), nullable=True),
        sa.Column("refer", sa.Boolean(), nullable=True),
        sa.Column("error", sa.String(length=64), nullable=True),
        sa.Column("inference_ms", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_shadow_predictions_prediction_id", "shadow_predictions", ["prediction_id"])
    op.create_index("ix_shadow_predictions_model_digest", "shadow_predictions", ["model_digest"])


def downgrade() -> None:
    op.drop_index("ix_shadow_predictions_model_digest", table_name="shadow_predictions")
    op.drop_index("ix_shadow_predictions_prediction_id", table_name="shadow_predictions")
    op.drop_table("shadow_predictions")
