"""run_tags: each tag of a run in a row of its own, indexed by key and value, so runs are
filtered by tag without reading every run's tags

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-04 11:30:00

Additive: a new table, filled from the tags of the runs there are (a value longer than
the indexed length is kept whole on the run and cut in the table).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

_KEY_LENGTH = 255
_VALUE_LENGTH = 1000
_BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "run_tags",
        sa.Column(
            "run_id",
            sa.String(14),
            sa.ForeignKey("runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(_KEY_LENGTH), primary_key=True),
        sa.Column("value", sa.String(_VALUE_LENGTH), nullable=False),
    )
    op.create_index("ix_run_tags_key_value", "run_tags", ["key", "value", "run_id"])
    bind = op.get_bind()
    runs = sa.table("runs", sa.column("id", sa.String), sa.column("tags", sa.Text))
    run_tags = sa.table("run_tags", sa.column("run_id"), sa.column("key"), sa.column("value"))
    rows: list[dict[str, str]] = []
    for run_id, raw in bind.execute(sa.select(runs.c.id, runs.c.tags)):
        tags = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(tags, dict):
            continue
        for key, value in tags.items():
            if len(str(key)) > _KEY_LENGTH:
                continue
            rows.append({"run_id": run_id, "key": str(key), "value": str(value)[:_VALUE_LENGTH]})
        if len(rows) >= _BATCH:
            bind.execute(run_tags.insert(), rows)
            rows = []
    if rows:
        bind.execute(run_tags.insert(), rows)


def downgrade() -> None:
    op.drop_index("ix_run_tags_key_value", table_name="run_tags")
    op.drop_table("run_tags")
