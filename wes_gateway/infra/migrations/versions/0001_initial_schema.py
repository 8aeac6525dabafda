"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:55:57.231246

Migrations run while the previous release may still be serving: add before you remove
(expand, then contract in a later release), keep locks short, and make every step work on
both SQLite (batch mode) and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import wes_gateway.infra.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", wes_gateway.infra.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "compute_envs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("credentials_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("primary", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", wes_gateway.infra.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", wes_gateway.infra.db.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", wes_gateway.infra.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_compute_envs_owner_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compute_envs")),
        sa.UniqueConstraint("owner_id", "name", name=op.f("uq_compute_envs_owner_id_name")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=14), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "UNKNOWN",
                "QUEUED",
                "INITIALIZING",
                "RUNNING",
                "PAUSED",
                "COMPLETE",
                "EXECUTOR_ERROR",
                "SYSTEM_ERROR",
                "CANCELED",
                "CANCELING",
                "PREEMPTED",
                name="run_state",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("created_at", wes_gateway.infra.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", wes_gateway.infra.db.UTCDateTime(), nullable=False),
        sa.Column("start_time", wes_gateway.infra.db.UTCDateTime(), nullable=True),
        sa.Column("end_time", wes_gateway.infra.db.UTCDateTime(), nullable=True),
        sa.Column("last_seen_at", wes_gateway.infra.db.UTCDateTime(), nullable=True),
        sa.Column(
            "request",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "outputs",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("pipeline", sa.Text(), nullable=True),
        sa.Column("run_name", sa.String(length=80), nullable=True),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column("project_name", sa.String(length=255), nullable=True),
        sa.Column("repository", sa.Text(), nullable=True),
        sa.Column("revision", sa.String(length=100), nullable=True),
        sa.Column("commit_id", sa.String(length=64), nullable=True),
        sa.Column("profile", sa.String(length=255), nullable=True),
        sa.Column("command_line", sa.Text(), nullable=True),
        sa.Column(
            "command",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("config_text", sa.Text(), nullable=True),
        sa.Column("work_dir", sa.Text(), nullable=True),
        sa.Column("launch_dir", sa.Text(), nullable=True),
        sa.Column("user_name", sa.String(length=255), nullable=True),
        sa.Column("exit_status", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_report", sa.Text(), nullable=True),
        sa.Column(
            "workflow",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "stats",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "progress",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("compute_env_id", sa.String(length=32), nullable=True),
        sa.Column("backend_handle", sa.Text(), nullable=True),
        sa.Column("submit_attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["compute_env_id"],
            ["compute_envs.id"],
            name=op.f("fk_runs_compute_env_id_compute_envs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_runs_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_created", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_runs_owner_created", ["owner_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_runs_state", ["state", "compute_env_id"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=14), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("created_at", wes_gateway.infra.db.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", wes_gateway.infra.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_api_tokens_run_id_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "run_state_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.String(length=14), nullable=False),
        sa.Column(
            "from_state",
            sa.Enum(
                "UNKNOWN",
                "QUEUED",
                "INITIALIZING",
                "RUNNING",
                "PAUSED",
                "COMPLETE",
                "EXECUTOR_ERROR",
                "SYSTEM_ERROR",
                "CANCELED",
                "CANCELING",
                "PREEMPTED",
                name="run_state",
                native_enum=False,
                length=16,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_state",
            sa.Enum(
                "UNKNOWN",
                "QUEUED",
                "INITIALIZING",
                "RUNNING",
                "PAUSED",
                "COMPLETE",
                "EXECUTOR_ERROR",
                "SYSTEM_ERROR",
                "CANCELED",
                "CANCELING",
                "PREEMPTED",
                name="run_state",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("at", wes_gateway.infra.db.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_run_state_changes_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_state_changes")),
    )
    with op.batch_alter_table("run_state_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_state_changes_run_id"), ["run_id"], unique=False)

    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.String(length=14), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("process", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("hash", sa.String(length=32), nullable=True),
        sa.Column("native_id", sa.String(length=255), nullable=True),
        sa.Column("workdir", sa.Text(), nullable=True),
        sa.Column("exit_status", sa.Integer(), nullable=True),
        sa.Column("submit", wes_gateway.infra.db.UTCDateTime(), nullable=True),
        sa.Column("start", wes_gateway.infra.db.UTCDateTime(), nullable=True),
        sa.Column("complete", wes_gateway.infra.db.UTCDateTime(), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", wes_gateway.infra.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_tasks_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("run_id", "task_id", name=op.f("uq_tasks_run_id_task_id")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_run_process", ["run_id", "process"], unique=False)
        batch_op.create_index("ix_tasks_run_status", ["run_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_run_status")
        batch_op.drop_index("ix_tasks_run_process")

    op.drop_table("tasks")
    with op.batch_alter_table("run_state_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_state_changes_run_id"))

    op.drop_table("run_state_changes")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))
        batch_op.drop_index(batch_op.f("ix_api_tokens_run_id"))

    op.drop_table("api_tokens")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_state")
        batch_op.drop_index("ix_runs_owner_created")
        batch_op.drop_index("ix_runs_created")

    op.drop_table("runs")
    op.drop_table("compute_envs")
    op.drop_table("users")
