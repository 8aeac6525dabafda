"""run_trs: what a run's TRS workflow_url resolved to (the registry's tool version, its
git repository, revision and script)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 14:40:00

Additive: a nullable JSON column; runs accepted before it named no TRS workflow.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wes_gateway.infra.db import JSONType

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("trs", JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("trs")
