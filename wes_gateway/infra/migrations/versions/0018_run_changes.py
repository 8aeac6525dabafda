"""run_changes: the numbered changes of runs that live views (server-sent events) follow

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 14:40:00

Additive: a new table, empty at first (a stream that resumes from an id older than
its first row is told to read everything again).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wes_gateway.infra.db import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(14), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column(
            "workspace_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("kinds", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_run_changes")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_run_changes_at"), "run_changes", ["at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_run_changes_at"), table_name="run_changes")
    op.drop_table("run_changes")
