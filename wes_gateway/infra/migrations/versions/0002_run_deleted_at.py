"""runs.deleted_at: runs deleted while still active

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 23:00:00

Additive only: a nullable column, so the previous release keeps serving during the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wes_gateway.infra.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("deleted_at", wes_gateway.infra.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("deleted_at")
