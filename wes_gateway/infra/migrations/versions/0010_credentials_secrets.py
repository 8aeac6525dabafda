"""credentials and pipeline_secrets: stored cloud and git credentials, and the secrets
pipelines read, their secret parts sealed

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-04 11:00:00

Additive: two new tables (compute_envs.credentials_id exists since 0001), so the previous
release keeps serving during the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wes_gateway.infra.db

revision = "0010"
down_revision = "0014"
branch_labels = None
depends_on = None

TenancyId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DateTime = wes_gateway.infra.db.UTCDateTime()


def _owner_and_workspace() -> list[sa.Column]:
    return [
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column(
            "owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column(
            "workspace_id",
            TenancyId,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=True,
        ),
    ]


def _times() -> list[sa.Column]:
    return [
        sa.Column("created_at", DateTime, nullable=False),
        sa.Column("updated_at", DateTime, nullable=False),
        sa.Column("last_used_at", DateTime, nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(32), primary_key=True),
        *_owner_and_workspace(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("base_url", sa.String(200), nullable=True),
        sa.Column("keys", wes_gateway.infra.db.JSONType, nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        *_times(),
        sa.UniqueConstraint("scope", "name", name="uq_credentials_scope_name"),
    )
    op.create_index("ix_credentials_workspace_id", "credentials", ["workspace_id"])
    op.create_table(
        "pipeline_secrets",
        sa.Column("id", TenancyId, primary_key=True),
        *_owner_and_workspace(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        *_times(),
        sa.UniqueConstraint("scope", "name", name="uq_pipeline_secrets_scope_name"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_pipeline_secrets_workspace_id", "pipeline_secrets", ["workspace_id"])


def downgrade() -> None:
    op.drop_index("ix_pipeline_secrets_workspace_id", table_name="pipeline_secrets")
    op.drop_table("pipeline_secrets")
    op.drop_index("ix_credentials_workspace_id", table_name="credentials")
    op.drop_table("credentials")
