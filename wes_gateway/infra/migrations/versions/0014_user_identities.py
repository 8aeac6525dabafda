"""user_identities: provider accounts (issuer, subject) linked to users; users.email and
users.made_by

Revision ID: 0014
Revises: 0008
Create Date: 2026-12-04 11:10:00

Additive: a new table and two nullable columns. Users made before it keep made_by
NULL: the first sign-in of a provider account claiming one's name links to it, as
accounts were matched by name before; users made after it are linked so only when the
operator allows it (WES_GATEWAY_OIDC_LINK_EXISTING_USERS).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wes_gateway.infra.db import UTCDateTime

revision = "0014"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_identities",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("admin_granted", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("issuer", "subject"),
    )
    op.create_index("ix_user_identities_user_id", "user_identities", ["user_id"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(255), nullable=True))
        batch.add_column(sa.Column("made_by", sa.String(16), nullable=True))
        batch.create_index("ix_users_email", ["email"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_email")
        batch.drop_column("made_by")
        batch.drop_column("email")
    op.drop_index("ix_user_identities_user_id", table_name="user_identities")
    op.drop_table("user_identities")
