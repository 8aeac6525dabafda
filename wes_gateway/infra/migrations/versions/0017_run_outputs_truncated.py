"""runs.outputs_truncated: whether a run's outputs list was cut at its bound

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 14:30:00

Additive: a nullable column. NULL means the run's outdir has not been listed (every run
before this revision); the workers list it once, when a run's head job ends.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("outputs_truncated", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("outputs_truncated")
