"""user_identities: provider accounts (issuer, subject) linked to users

Revision ID: 0014
Revises: 0008
Create Date: 2026-12-04 11:10:00

Additive: a new table. Users made by single sign-on before it have no link yet: their
account's next sign-in links to them as to a user of the same name (the name was made
from that account's claim), unless another account is linked to that user first.
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


def downgrade() -> None:
    op.drop_index("ix_user_identities_user_id", table_name="user_identities")
    op.drop_table("user_identities")
