"""api_tokens.number, scope, last_used_at, expires_at: Seqera's token list, read-only
tokens and the short-lived tokens of single sign-on

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 08:20:00

Additive: three nullable columns and one with a server default, so the previous release keeps
serving during the upgrade. Tokens made before get a random public number here (their
text still carries their old string id, which keeps working).
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

from wes_gateway.infra.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Public token numbers stay below 2**53, so a JavaScript client reads them exactly.
_NUMBER_LIMIT = 2**53 - 1


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("number", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("scope", sa.String(16), nullable=False, server_default="all"))
        batch.add_column(sa.Column("last_used_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("expires_at", UTCDateTime(), nullable=True))
    bind = op.get_bind()
    tokens = sa.table("api_tokens", sa.column("id", sa.String), sa.column("number", sa.BigInteger))
    ids = bind.execute(sa.select(tokens.c.id)).scalars().all()
    used: set[int] = set()
    for token_id in ids:
        number = secrets.randbelow(_NUMBER_LIMIT) + 1
        while number in used:
            number = secrets.randbelow(_NUMBER_LIMIT) + 1
        used.add(number)
        bind.execute(tokens.update().where(tokens.c.id == token_id).values(number=number))
    with op.batch_alter_table("api_tokens") as batch:
        batch.create_unique_constraint("uq_api_tokens_number", ["number"])


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint("uq_api_tokens_number", type_="unique")
        batch.drop_column("expires_at")
        batch.drop_column("last_used_at")
        batch.drop_column("scope")
        batch.drop_column("number")
