"""The migrations form one line: several heads would mean a merge left two branches unjoined."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from cxr_pneumonia.store.db.migrate import alembic_config


def test_there_is_exactly_one_alembic_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several Alembic heads: {heads}; re-chain down_revision"
