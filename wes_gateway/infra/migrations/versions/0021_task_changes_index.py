"""An index of each run's task records by when they were last written, for the live
updates that hand out the records changed since a stream last looked
(``task_changes``): read from the run's newest writes, not from all its tasks

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 18:15:00

Additive: one index.
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tasks_run_updated", "tasks", ["run_id", "updated_at", "task_id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_run_updated", table_name="tasks")
