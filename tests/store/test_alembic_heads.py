"""Several branches add migrations: the chain must stay one line (one head)."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from cxr_pneumonia.store.db.migrate import alembic_config


def test_alembic_has_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several Alembic heads: {heads} (re-chain down_revision)"
