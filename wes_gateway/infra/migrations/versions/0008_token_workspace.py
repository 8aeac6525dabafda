"""api_tokens.workspace_id: a token limited to one workspace

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 11:00:00

Additive: one nullable column (NULL: the token is not limited to a workspace), so the
previous release keeps serving during the upgrade. A token limited to a workspace goes
with the workspace.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("workspace_id", _ID, nullable=True))
        batch.create_foreign_key(
            "fk_api_tokens_workspace_id",
            "workspaces",
            ["workspace_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_api_tokens_workspace_id", ["workspace_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_index("ix_api_tokens_workspace_id")
        batch.drop_constraint("fk_api_tokens_workspace_id", type_="foreignkey")
        batch.drop_column("workspace_id")
