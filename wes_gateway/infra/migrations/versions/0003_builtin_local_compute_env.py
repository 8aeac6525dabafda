"""the built-in compute environment: the workers' own machine, primary

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 23:10:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import wes_gateway.infra.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_envs = sa.table(
    "compute_envs",
    sa.column("id", sa.String),
    sa.column("owner_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("description", sa.Text),
    sa.column("platform", sa.String),
    sa.column("config", wes_gateway.infra.db.JSONType),
    sa.column("status", sa.String),
    sa.column("primary", sa.Boolean),
    sa.column("deleted", sa.Boolean),
    sa.column("created_at", wes_gateway.infra.db.UTCDateTime()),
    sa.column("updated_at", wes_gateway.infra.db.UTCDateTime()),
)


def upgrade() -> None:
    now = datetime.now(UTC)
    primary_exists = (
        op.get_bind()
        .execute(sa.select(sa.func.count()).select_from(_envs).where(_envs.c.primary.is_(True)))
        .scalar_one()
    )
    op.bulk_insert(
        _envs,
        [
            {
                "id": "local",
                "owner_id": None,
                "name": "local",
                "description": "Head jobs run as processes on the workers' own machine.",
                "platform": "local-platform",
                "config": {},
                "status": "AVAILABLE",
                "primary": not primary_exists,
                "deleted": False,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )


def downgrade() -> None:
    op.execute(_envs.delete().where(_envs.c.id == "local"))
