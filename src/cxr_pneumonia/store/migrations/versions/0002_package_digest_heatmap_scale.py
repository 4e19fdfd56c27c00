"""Predictions record the model package digest and the heatmap's raw peak and reference scale.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # nullable: rows written before this revision have none of them (and their digests stay valid)
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("model_digest", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("heatmap_peak", sa.Double(), nullable=True))
        batch.add_column(sa.Column("heatmap_reference", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("heatmap_reference")
        batch.drop_column("heatmap_peak")
        batch.drop_column("model_digest")
