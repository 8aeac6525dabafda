"""runs.job_settled_at: the head job of a run that ended by its trace is still settled

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00

Additive: a nullable column and a partial index on the runs the poll still watches. Runs
that had already ended count as settled, so the upgrade sends no worker after old jobs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wes_gateway.infra.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UNSETTLED = sa.text("job_settled_at IS NULL AND backend_handle IS NOT NULL")
ENDED = ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("job_settled_at", wes_gateway.infra.db.UTCDateTime(), nullable=True)
        )
    runs = sa.table(
        "runs",
        sa.column("state", sa.String),
        sa.column("end_time", wes_gateway.infra.db.UTCDateTime()),
        sa.column("updated_at", wes_gateway.infra.db.UTCDateTime()),
        sa.column("job_settled_at", wes_gateway.infra.db.UTCDateTime()),
    )
    op.execute(
        runs.update()
        .where(runs.c.state.in_(ENDED))
        .values(job_settled_at=sa.func.coalesce(runs.c.end_time, runs.c.updated_at))
    )
    op.create_index(
        "ix_runs_unsettled",
        "runs",
        ["state", "compute_env_id"],
        sqlite_where=UNSETTLED,
        postgresql_where=UNSETTLED,
    )


def downgrade() -> None:
    op.drop_index("ix_runs_unsettled", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("job_settled_at")
