"""runs.cache_run_id: where a resumed run finds its session's history, cache and work dir

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 07:30:00

Additive only: a nullable column, so the previous release keeps serving during the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cache_run_id", sa.String(14), nullable=True))
        batch.create_index("ix_runs_cache_run_id", ["cache_run_id"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_cache_run_id")
        batch.drop_column("cache_run_id")
