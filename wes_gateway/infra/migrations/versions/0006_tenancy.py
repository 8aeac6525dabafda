"""tenancy: organizations, members, teams, workspaces, participants; runs and compute
environments belong to a workspace

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 08:20:00

Existing runs stay in their owner's personal workspace (workspace_id NULL), so every
user keeps seeing their runs. Existing compute environments other than the built-in
one move to the workspace ``default/shared`` of a new organization ``default`` in which
every current user takes part (administrators as owners, the others with ``launch``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import wes_gateway.infra.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TenancyId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DateTime = wes_gateway.infra.db.UTCDateTime()
BUILTIN_ID = "local"


def _id() -> sa.Column:
    return sa.Column("id", TenancyId, primary_key=True)


def upgrade() -> None:
    op.create_table(
        "organizations",
        _id(),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("full_name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("location", sa.String(100), nullable=True),
        sa.Column("website", sa.String(255), nullable=True),
        sa.Column("created_at", DateTime, nullable=False),
        sa.Column("updated_at", DateTime, nullable=False),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "org_members",
        _id(),
        sa.Column(
            "org_id",
            TenancyId,
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.UniqueConstraint("org_id", "user_id"),
    )
    op.create_index("ix_org_members_user_id", "org_members", ["user_id"])
    op.create_table(
        "teams",
        _id(),
        sa.Column(
            "org_id",
            TenancyId,
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.UniqueConstraint("org_id", "name"),
    )
    op.create_table(
        "team_members",
        sa.Column(
            "team_id",
            TenancyId,
            sa.ForeignKey("teams.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "member_id",
            TenancyId,
            sa.ForeignKey("org_members.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_table(
        "workspaces",
        _id(),
        sa.Column(
            "org_id",
            TenancyId,
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("full_name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("visibility", sa.String(8), nullable=False),
        sa.Column("created_at", DateTime, nullable=False),
        sa.Column("updated_at", DateTime, nullable=False),
        sa.UniqueConstraint("org_id", "name"),
    )
    op.create_index("ix_workspaces_org_id", "workspaces", ["org_id"])
    op.create_table(
        "participants",
        _id(),
        sa.Column(
            "workspace_id",
            TenancyId,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "member_id",
            TenancyId,
            sa.ForeignKey("org_members.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "team_id", TenancyId, sa.ForeignKey("teams.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.UniqueConstraint("workspace_id", "member_id"),
        sa.UniqueConstraint("workspace_id", "team_id"),
    )
    op.create_index("ix_participants_member_id", "participants", ["member_id"])
    op.create_index("ix_participants_team_id", "participants", ["team_id"])
    _add_workspace_column("runs", "fk_runs_workspace_id_workspaces", "RESTRICT")
    op.create_index("ix_runs_workspace_created", "runs", ["workspace_id", "created_at", "id"])
    _add_workspace_column("compute_envs", "fk_compute_envs_workspace_id_workspaces", "CASCADE")
    op.create_index("ix_compute_envs_workspace_id", "compute_envs", ["workspace_id"])
    _move_compute_envs()


def _add_workspace_column(table: str, constraint: str, on_delete: str) -> None:
    # On SQLite a rebuild of the table; env.py turns foreign keys off during migrations,
    # so the rows that point at it are left as they are.
    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column("workspace_id", TenancyId, nullable=True))
        batch.create_foreign_key(
            constraint, "workspaces", ["workspace_id"], ["id"], ondelete=on_delete
        )


def _drop_workspace_column(table: str, constraint: str, index: str) -> None:
    op.drop_index(index, table_name=table)
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(constraint, type_="foreignkey")
        batch.drop_column("workspace_id")


def _move_compute_envs() -> None:
    """The compute environments there are (but the built-in one) go to default/shared,
    in which every current user takes part."""
    bind = op.get_bind()
    meta = sa.MetaData()
    envs = sa.Table("compute_envs", meta, autoload_with=bind)
    users = sa.Table("users", meta, autoload_with=bind)
    orgs = sa.Table("organizations", meta, autoload_with=bind)
    members = sa.Table("org_members", meta, autoload_with=bind)
    workspaces = sa.Table("workspaces", meta, autoload_with=bind)
    participants = sa.Table("participants", meta, autoload_with=bind)
    moving = bind.execute(sa.select(envs.c.id, envs.c.primary).where(envs.c.id != BUILTIN_ID))
    moving = moving.all()
    if not moving:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    org_id = bind.execute(
        orgs.insert().values(
            name="default",
            full_name="Default organization",
            description="Made by the upgrade to workspaces: holds the compute environments "
            "that existed before.",
            created_at=now,
            updated_at=now,
        )
    ).inserted_primary_key[0]
    workspace_id = bind.execute(
        workspaces.insert().values(
            org_id=org_id,
            name="shared",
            full_name="Shared compute environments",
            visibility="SHARED",
            created_at=now,
            updated_at=now,
        )
    ).inserted_primary_key[0]
    for user_id, is_admin in bind.execute(sa.select(users.c.id, users.c.is_admin)).all():
        member_id = bind.execute(
            members.insert().values(
                org_id=org_id, user_id=user_id, role="owner" if is_admin else "member"
            )
        ).inserted_primary_key[0]
        bind.execute(
            participants.insert().values(
                workspace_id=workspace_id,
                member_id=member_id,
                role="owner" if is_admin else "launch",
            )
        )
    bind.execute(envs.update().where(envs.c.id != BUILTIN_ID).values(workspace_id=workspace_id))
    if any(primary for _, primary in moving):
        # The moved primary stays the shared workspace's; the built-in one is the global.
        bind.execute(envs.update().where(envs.c.id == BUILTIN_ID).values(primary=True))


def downgrade() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    envs = sa.Table("compute_envs", meta, autoload_with=bind)
    runs = sa.Table("runs", meta, autoload_with=bind)
    # Runs of a workspace go back to their owners; compute environments become global.
    bind.execute(runs.update().values(workspace_id=None))
    bind.execute(envs.update().values(workspace_id=None))
    _drop_workspace_column(
        "compute_envs", "fk_compute_envs_workspace_id_workspaces", "ix_compute_envs_workspace_id"
    )
    _drop_workspace_column("runs", "fk_runs_workspace_id_workspaces", "ix_runs_workspace_created")
    for table in ("participants", "workspaces", "team_members", "teams", "org_members"):
        op.drop_table(table)
    op.drop_table("organizations")
