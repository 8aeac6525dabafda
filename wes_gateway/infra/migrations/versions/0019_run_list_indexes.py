"""Indexes that serve every run list filter newest first: the personal workspace's runs,
each state within a scope, and each tag (run_tags gets its run's created_at), read in
(created_at, id) order from the newest end

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 14:30:00

Additive: indexes, and run_tags.created_at filled from the runs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wes_gateway.infra.db import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_runs_owner_workspace_created": ["owner_id", "workspace_id", "created_at", "id"],
    "ix_runs_owner_workspace_state_created": [
        "owner_id",
        "workspace_id",
        "state",
        "created_at",
        "id",
    ],
    "ix_runs_workspace_state_created": ["workspace_id", "state", "created_at", "id"],
    "ix_runs_state_created": ["state", "created_at", "id"],
}


def upgrade() -> None:
    for name, columns in _INDEXES.items():
        op.create_index(name, "runs", columns)
    # (owner_id, workspace_id, created_at, id) serves whatever this one did.
    op.drop_index("ix_runs_owner_created", table_name="runs")
    op.add_column("run_tags", sa.Column("created_at", UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE run_tags SET created_at = "
        "(SELECT runs.created_at FROM runs WHERE runs.id = run_tags.run_id)"
    )
    op.create_index(
        "ix_run_tags_key_value_created", "run_tags", ["key", "value", "created_at", "run_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_run_tags_key_value_created", table_name="run_tags")
    with op.batch_alter_table("run_tags") as batch:
        batch.drop_column("created_at")
    op.create_index("ix_runs_owner_created", "runs", ["owner_id", "created_at", "id"])
    for name in _INDEXES:
        op.drop_index(name, table_name="runs")
