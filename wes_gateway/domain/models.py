"""The stored run model: users and their tokens, runs (one row is both a WES run and a
Tower workflow), the tasks of a run, compute environments and the state history; and the
tenancy they live in: organizations, their members and teams, workspaces and their
participants.

A user's personal workspace (Seqera's user context, no ``workspaceId``) is not a row:
a run or compute environment whose ``workspace_id`` is NULL is in it. For a run that is
its owner's personal workspace; for a compute environment it means global (made by a
service administrator, offered in every workspace, as the built-in ``local`` one)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from wes_gateway.domain.states import State
from wes_gateway.infra.db import Base, JSONType, UTCDateTime, utcnow

StateColumn = Enum(
    State,
    name="run_state",
    native_enum=False,
    length=16,
    values_callable=lambda states: [state.value for state in states],
    validate_strings=True,
)


# A run with a head job not yet seen to end after the run did (ix_runs_unsettled).
UNSETTLED = text("job_settled_at IS NULL AND backend_handle IS NOT NULL")


# Tenancy ids are positive int64 (Seqera's); SQLite's integer key is its rowid.
TenancyId = BigInteger().with_variant(Integer, "sqlite")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # The verified address the OpenID provider gave at the last sign-in (None: unknown).
    email: Mapped[str | None] = mapped_column(String(255), index=True)
    # Who made the user: "operator" (the command line), "sso" (a first sign-in); None for
    # users made before this was kept, whom a provider account of their name may claim.
    made_by: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserIdentity(Base):
    """A provider account (issuer and subject) linked to the user it signs in as."""

    __tablename__ = "user_identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Whether the user's administrator rights came from the provider's admin group (and
    # so go when the account leaves it).
    admin_granted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("issuer", "subject"),)


class ApiToken(Base):
    """A bearer token. Only a hash of its secret is stored; the id is public (it is how a
    token is named for revocation). A token with a ``run_id`` may act on that run only."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    description: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The Seqera-style public id (an int64 in /api/tokens). A token made since this
    # column exists has id == str(number), and its text carries the number as its tid.
    number: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    # What the token may do: "all", or "read" (GET/HEAD/OPTIONS only).
    scope: Mapped[str] = mapped_column(String(16), default="all", server_default="all")
    # The one workspace the token may act in; None: wherever its user may.
    workspace_id: Mapped[int | None] = mapped_column(
        TenancyId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A token that ends by itself (the dashboard's single sign-on session); None: never.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ComputeEnv(Base):
    """Where head jobs run; Tower's compute environment shape."""

    __tablename__ = "compute_envs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    platform: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    credentials_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="AVAILABLE")
    message: Mapped[str | None] = mapped_column(Text)
    primary: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # NULL: global (a service administrator's, offered in every workspace).
    workspace_id: Mapped[int | None] = mapped_column(
        TenancyId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )

    __table_args__ = (UniqueConstraint("owner_id", "name"),)


class Credential(Base):
    """Stored credentials (Seqera's ``Credentials``): the provider's non-secret fields in
    ``keys``, its secret ones sealed (``infra.sealing``) in ``sealed``. ``scope`` is
    where the name is unique: ``w<workspace id>``, or ``u<user id>`` for a user's
    personal workspace."""

    __tablename__ = "credentials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    workspace_id: Mapped[int | None] = mapped_column(
        TenancyId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(16))
    base_url: Mapped[str | None] = mapped_column(String(200))
    keys: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("scope", "name", name="uq_credentials_scope_name"),)


class PipelineSecret(Base):
    """A pipeline secret (Seqera's ``PipelineSecret``): a name and a sealed value, of a
    workspace or of a user (``scope`` as on ``Credential``)."""

    __tablename__ = "pipeline_secrets"

    id: Mapped[int] = mapped_column(TenancyId, primary_key=True)
    scope: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    workspace_id: Mapped[int | None] = mapped_column(
        TenancyId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # A deleted secret's id is never given to another (SQLite would reuse the highest).
    __table_args__ = (
        UniqueConstraint("scope", "name", name="uq_pipeline_secrets_scope_name"),
        {"sqlite_autoincrement": True},
    )


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(TenancyId, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    full_name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(100))
    website: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OrgMember(Base):
    """A user's membership of an organization, with the org role (owner, member,
    collaborator)."""

    __tablename__ = "org_members"

    id: Mapped[int] = mapped_column(TenancyId, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        TenancyId, ForeignKey("organizations.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))

    __table_args__ = (UniqueConstraint("org_id", "user_id"),)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(TenancyId, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        TenancyId, ForeignKey("organizations.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(40))
    description: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("org_id", "name"),)


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        TenancyId, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        TenancyId, ForeignKey("org_members.id", ondelete="CASCADE"), primary_key=True
    )


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(TenancyId, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        TenancyId, ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(40))
    full_name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(8), default="PRIVATE")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("org_id", "name"),)


class Participant(Base):
    """A member or a team of the workspace's organization, with a workspace role."""

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(TenancyId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        TenancyId, ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    member_id: Mapped[int | None] = mapped_column(
        TenancyId, ForeignKey("org_members.id", ondelete="CASCADE"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(
        TenancyId, ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        UniqueConstraint("workspace_id", "member_id"),
        UniqueConstraint("workspace_id", "team_id"),
    )


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(14), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # NULL: the owner's personal workspace. A workspace with runs is not deleted.
    workspace_id: Mapped[int | None] = mapped_column(
        TenancyId, ForeignKey("workspaces.id", ondelete="RESTRICT")
    )
    state: Mapped[State] = mapped_column(StateColumn, default=State.QUEUED)
    # Where the run came from: "wes", "tower" (a launch) or "trace" (monitoring only:
    # started elsewhere with -with-tower, so it cannot be cancelled from here).
    source: Mapped[str] = mapped_column(String(8), default="wes")

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The request as submitted (WES RunRequest shape, objects decoded) and its tags.
    request: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    tags: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # A TRS workflow_url's resolution (domain.trs.Resolution.record): the request keeps the
    # URI as sent; ``pipeline`` and ``revision`` are what it resolved to.
    trs: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # None until a worker has listed the run's outdir (once, when its head job ended);
    # then whether more files were found than ``outputs`` holds (domain/run_outputs.py).
    outputs_truncated: Mapped[bool | None] = mapped_column(Boolean)

    # What a Tower workflow carries (filled at submission and by the trace calls).
    pipeline: Mapped[str | None] = mapped_column(Text)
    run_name: Mapped[str | None] = mapped_column(String(80))
    session_id: Mapped[str | None] = mapped_column(String(36))
    project_name: Mapped[str | None] = mapped_column(String(255))
    repository: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[str | None] = mapped_column(String(100))
    commit_id: Mapped[str | None] = mapped_column(String(64))
    profile: Mapped[str | None] = mapped_column(String(255))
    command_line: Mapped[str | None] = mapped_column(Text)
    command: Mapped[list[str] | None] = mapped_column(JSONType)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    config_text: Mapped[str | None] = mapped_column(Text)
    work_dir: Mapped[str | None] = mapped_column(Text)
    launch_dir: Mapped[str | None] = mapped_column(Text)
    user_name: Mapped[str | None] = mapped_column(String(255))
    exit_status: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    error_report: Mapped[str | None] = mapped_column(Text)
    workflow: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # trace metadata
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    metrics: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)

    # Where it runs, and the backend's handle on it (stored so a worker restart loses nothing).
    compute_env_id: Mapped[str | None] = mapped_column(
        ForeignKey("compute_envs.id", ondelete="SET NULL")
    )
    compute_env: Mapped[ComputeEnv | None] = relationship(lazy="select")
    backend_handle: Mapped[str | None] = mapped_column(Text)
    # A resumed run continues a session in the folder of the run that began it (its
    # .nextflow history and cache, and its work dir): that run's id. None: its own folder.
    cache_run_id: Mapped[str | None] = mapped_column(String(14), index=True)
    submit_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set when the run is deleted: it is hidden from every read at once, and a worker
    # removes its folder and then its rows once nothing runs for it (runs.purge).
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set once the workers have seen the run's head job end after the run ended (its last
    # console lines copied, the platform's reason recorded), however the run ended.
    job_settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # ListRuns: newest first, per owner (users) and overall (admins); keyset on both keys.
        Index("ix_runs_created", "created_at", "id"),
        Index("ix_runs_workspace_created", "workspace_id", "created_at", "id"),
        # The personal workspace (the owner's runs of no workspace; it serves an owner's
        # runs too), and each state within every scope, newest first: each list filter
        # reads its page from an index's end.
        Index("ix_runs_owner_workspace_created", "owner_id", "workspace_id", "created_at", "id"),
        Index(
            "ix_runs_owner_workspace_state_created",
            "owner_id",
            "workspace_id",
            "state",
            "created_at",
            "id",
        ),
        Index("ix_runs_workspace_state_created", "workspace_id", "state", "created_at", "id"),
        Index("ix_runs_state_created", "state", "created_at", "id"),
        # State counts, and the workers' scans of active runs.
        Index("ix_runs_state", "state", "compute_env_id"),
        # The runs whose head job the poll still watches (active, or ended by their trace
        # with the job not yet settled): few, whatever the size of the history.
        Index(
            "ix_runs_unsettled",
            "state",
            "compute_env_id",
            sqlite_where=UNSETTLED,
            postgresql_where=UNSETTLED,
        ),
    )


# The longest tag key and value a run may carry: they are indexed (run_tags).
TAG_KEY_LENGTH = 255
TAG_VALUE_LENGTH = 1000


class RunTag(Base):
    """One tag of a run, a row of its own so ``GET /runs?tag_key=&tag_value=`` finds the
    runs by index, however many there are (``Run.tags`` keeps the whole map, as shown)."""

    __tablename__ = "run_tags"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(TAG_KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(String(TAG_VALUE_LENGTH))
    # The run's created_at (never changes): the runs with a tag are read newest first
    # from this table's index alone, however many runs there are and however few have it.
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_run_tags_key_value", "key", "value", "run_id"),
        Index("ix_run_tags_key_value_created", "key", "value", "created_at", "run_id"),
    )


class Task(Base):
    """One task of a run, as the trace calls report it (``data`` keeps the full record)."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    task_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(Text)
    process: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(16))
    hash: Mapped[str | None] = mapped_column(String(32))
    native_id: Mapped[str | None] = mapped_column(String(255))
    workdir: Mapped[str | None] = mapped_column(Text)
    exit_status: Mapped[int | None] = mapped_column(Integer)
    submit: Mapped[datetime | None] = mapped_column(UTCDateTime)
    start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    complete: Mapped[datetime | None] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "task_id"),
        # The tasks list: a filter or sort column of one run, then the task id as the
        # tie-break, so a page is read in index order, not sorted from the whole run.
        Index("ix_tasks_run_process", "run_id", "process", "task_id"),
        Index("ix_tasks_run_status", "run_id", "status", "task_id"),
        Index(
            "ix_tasks_run_name",
            "run_id",
            "name",
            "task_id",
            postgresql_ops={"name": "text_pattern_ops"},  # name prefixes (LIKE 'x%')
        ),
        Index("ix_tasks_run_submit", "run_id", "submit", "task_id"),
        Index("ix_tasks_run_start", "run_id", "start", "task_id"),
        Index("ix_tasks_run_complete", "run_id", "complete", "task_id"),
        Index("ix_tasks_run_exit_status", "run_id", "exit_status", "task_id"),
        # The records a run's live updates hand out: its latest writes (task_changes).
        Index("ix_tasks_run_updated", "run_id", "updated_at", "task_id"),
    )


class TaskLoad(Base):
    """What a run's tasks add up to, kept as task records are written (``task_loads``):
    one row per process of the run, and one for the whole run (``process`` = ``WHOLE_RUN``).

    Counts of tasks by status; for finished tasks the sums of CPUs, CPU time, CPU load
    (thousandths of a CPU-millisecond), memory and I/O; for running tasks their CPUs and
    memory now, and the highest those ever were (peaks)."""

    __tablename__ = "task_loads"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    process: Mapped[str] = mapped_column(String(255), primary_key=True)
    tasks: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    submitted: Mapped[int] = mapped_column(BigInteger, default=0)
    running: Mapped[int] = mapped_column(BigInteger, default=0)
    succeeded: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)
    cached: Mapped[int] = mapped_column(BigInteger, default=0)
    aborted: Mapped[int] = mapped_column(BigInteger, default=0)
    cpus: Mapped[int] = mapped_column(BigInteger, default=0)
    cpu_time: Mapped[int] = mapped_column(BigInteger, default=0)
    cpu_load_milli: Mapped[int] = mapped_column(BigInteger, default=0)
    memory_rss: Mapped[int] = mapped_column(BigInteger, default=0)
    memory_req: Mapped[int] = mapped_column(BigInteger, default=0)
    read_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    write_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    vol_ctx_switch: Mapped[int] = mapped_column(BigInteger, default=0)
    inv_ctx_switch: Mapped[int] = mapped_column(BigInteger, default=0)
    load_cpus: Mapped[int] = mapped_column(BigInteger, default=0)
    load_memory: Mapped[int] = mapped_column(BigInteger, default=0)
    # The workflow stats' part: finished tasks' CPU time by status, failures Nextflow
    # ignored or retried.
    succeed_millis: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_millis: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_millis: Mapped[int] = mapped_column(BigInteger, default=0)
    ignored: Mapped[int] = mapped_column(BigInteger, default=0)
    retries: Mapped[int] = mapped_column(BigInteger, default=0)
    peak_tasks: Mapped[int] = mapped_column(BigInteger, default=0)
    peak_cpus: Mapped[int] = mapped_column(BigInteger, default=0)
    peak_memory: Mapped[int] = mapped_column(BigInteger, default=0)
    # The executors the run's tasks ran on (the whole-run row only).
    executors: Mapped[list[str] | None] = mapped_column(JSONType)


class RunStateChange(Base):
    __tablename__ = "run_state_changes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[State | None] = mapped_column(StateColumn)
    to_state: Mapped[State] = mapped_column(StateColumn)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")


class RunChange(Base):
    """One change of a run that live views follow (``domain.run_changes``): its number
    in one sequence for the whole service is the event id a stream hands out. Kept a
    while (``Settings.events_retention``), then pruned; no foreign key, so a removed
    run's last change outlives it."""

    __tablename__ = "run_changes"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(String(14))
    owner_id: Mapped[int] = mapped_column(Integer)
    workspace_id: Mapped[int | None] = mapped_column(TenancyId)
    kinds: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    # AUTOINCREMENT on SQLite: a number is never handed out twice, even once every row
    # has been pruned (a stream's last event id must not come round again).
    __table_args__ = ({"sqlite_autoincrement": True},)


class Label(Base):
    """A workspace's label (Seqera's): a plain one (``name``), or a resource label
    (``name=value``). In the personal workspace (``workspace_id`` NULL) it is its
    owner's."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(TenancyId, primary_key=True)
    workspace_id: Mapped[int | None] = mapped_column(
        TenancyId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(39))
    value: Mapped[str | None] = mapped_column(String(39))
    resource: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Pipeline(Base):
    """A launchpad pipeline: a name, and the launch it saves (a WorkflowLaunchRequest's
    fields, checked when saved). In the personal workspace it is its owner's."""

    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(TenancyId, primary_key=True)
    workspace_id: Mapped[int | None] = mapped_column(
        TenancyId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(99))
    description: Mapped[str | None] = mapped_column(Text)
    icon: Mapped[str | None] = mapped_column(String(255))
    # The saved launch's id (Seqera's launch ids are strings) and its fields.
    launch_id: Mapped[str] = mapped_column(String(22), unique=True)
    launch: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PipelineLabel(Base):
    __tablename__ = "pipeline_labels"

    pipeline_id: Mapped[int] = mapped_column(
        TenancyId, ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[int] = mapped_column(
        TenancyId, ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class RunLabel(Base):
    __tablename__ = "run_labels"

    run_id: Mapped[str] = mapped_column(
        String(14), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[int] = mapped_column(
        TenancyId, ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True, index=True
    )
