"""labels and launchpad pipelines of a workspace; labels on pipelines and on runs

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-04 11:10:00

Additive: four new tables, nothing existing changes, so the previous release keeps
serving during the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wes_gateway.infra.db

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None

TenancyId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DateTime = wes_gateway.infra.db.UTCDateTime()


def _scope() -> list[sa.Column]:
    return [
        sa.Column("id", TenancyId, primary_key=True),
        sa.Column(
            "workspace_id",
            TenancyId,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "labels",
        *_scope(),
        sa.Column("name", sa.String(39), nullable=False),
        sa.Column("value", sa.String(39), nullable=True),
        sa.Column("resource", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", DateTime, nullable=False),
    )
    op.create_index("ix_labels_workspace_id", "labels", ["workspace_id"])
    op.create_index("ix_labels_owner_id", "labels", ["owner_id"])
    op.create_table(
        "pipelines",
        *_scope(),
        sa.Column("name", sa.String(99), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("icon", sa.String(255), nullable=True),
        sa.Column("launch_id", sa.String(22), nullable=False),
        sa.Column("launch", wes_gateway.infra.db.JSONType, nullable=False),
        sa.Column("created_at", DateTime, nullable=False),
        sa.Column("updated_at", DateTime, nullable=False),
        sa.UniqueConstraint("launch_id"),
    )
    op.create_index("ix_pipelines_workspace_id", "pipelines", ["workspace_id"])
    op.create_index("ix_pipelines_owner_id", "pipelines", ["owner_id"])
    op.create_table(
        "pipeline_labels",
        sa.Column(
            "pipeline_id",
            TenancyId,
            sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "label_id", TenancyId, sa.ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_index("ix_pipeline_labels_label_id", "pipeline_labels", ["label_id"])
    op.create_table(
        "run_labels",
        sa.Column(
            "run_id", sa.String(14), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "label_id", TenancyId, sa.ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_index("ix_run_labels_label_id", "run_labels", ["label_id"])


def downgrade() -> None:
    op.drop_table("run_labels")
    op.drop_table("pipeline_labels")
    op.drop_table("pipelines")
    op.drop_table("labels")
