"""What changed about runs, numbered, for the live views (server-sent events) to follow.

A change is noted with ``note(session, run_id, kind)`` where it happens; when the
session commits, each run noted gets one row in ``run_changes`` (its kinds joined), in
that same transaction, so a change is visible exactly when what it says is. Its number
(one sequence for the whole service) is the event id a stream hands out. On PostgreSQL
the same transaction also sends a notification (``pg_notify``, delivered on commit) that
wakes the processes serving streams; on SQLite they read the table for new rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, event, func, insert, literal, select
from sqlalchemy.orm import Session, load_only

from wes_gateway.domain.models import Run, RunChange
from wes_gateway.domain.states import is_terminal
from wes_gateway.domain.tokens import Principal
from wes_gateway.infra.db import utcnow

# The notification channel of PostgreSQL deployments.
CHANNEL = "wes_gateway_run_changes"

# What a change says a client should read again.
STATUS = "status"  # the run's state, progress or metadata (describe, progress, status)
TASKS = "tasks"  # its task records (the tasks list)
LOG = "log"  # its console grew (found by the stream itself: the file is not in the database)
ADDED = "added"  # a new run (lists)
REMOVED = "removed"  # a deleted run (lists)
KINDS = (STATUS, TASKS, LOG, ADDED, REMOVED)

_PENDING = "wes_gateway.run_changes"


@dataclass(frozen=True)
class Change:
    seq: int
    run_id: str
    owner_id: int
    workspace_id: int | None
    kinds: tuple[str, ...]

    def payload(self) -> str:
        return json.dumps(
            {
                "seq": self.seq,
                "run": self.run_id,
                "owner": self.owner_id,
                "ws": self.workspace_id,
                "kinds": list(self.kinds),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_payload(cls, text: str) -> Change:
        data = json.loads(text)
        return cls(
            seq=int(data["seq"]),
            run_id=str(data["run"]),
            owner_id=int(data["owner"]),
            workspace_id=None if data["ws"] is None else int(data["ws"]),
            kinds=tuple(str(kind) for kind in data["kinds"]),
        )


def note(session: Session, run_id: str, *kinds: str) -> None:
    """Remember that run ``run_id`` changed in ``kinds``; written when the session
    commits (nothing is written if it rolls back)."""
    pending: dict[str, set[str]] = session.info.setdefault(_PENDING, {})
    pending.setdefault(run_id, set()).update(kinds)


@event.listens_for(Session, "before_commit")
def _write_noted(session: Session) -> None:
    pending: dict[str, set[str]] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    notify = session.get_bind().dialect.name == "postgresql"
    now = utcnow()
    for run_id, kinds in pending.items():
        ordered = ",".join(kind for kind in KINDS if kind in kinds)
        source = select(
            Run.id,
            Run.owner_id,
            Run.workspace_id,
            literal(ordered),
            literal(now, RunChange.at.type),
        ).where(Run.id == run_id)
        row = session.execute(
            insert(RunChange)
            .from_select(["run_id", "owner_id", "workspace_id", "kinds", "at"], source)
            .returning(RunChange.seq, RunChange.owner_id, RunChange.workspace_id)
        ).first()
        if row is None or not notify:
            continue
        change = Change(row.seq, run_id, row.owner_id, row.workspace_id, tuple(ordered.split(",")))
        session.execute(select(func.pg_notify(CHANNEL, change.payload())))


@event.listens_for(Session, "after_soft_rollback")
def _forget_noted(session: Session, _transaction: object) -> None:
    session.info.pop(_PENDING, None)


def _change(row) -> Change:
    return Change(row.seq, row.run_id, row.owner_id, row.workspace_id, tuple(row.kinds.split(",")))


def since(
    session: Session, seq: int, *, run_id: str | None = None, limit: int = 1000
) -> list[Change]:
    """The changes numbered after ``seq`` (of one run when ``run_id`` is given), oldest
    first, at most ``limit``."""
    query = select(RunChange).where(RunChange.seq > seq)
    if run_id is not None:
        query = query.where(RunChange.run_id == run_id)
    rows = session.execute(query.order_by(RunChange.seq).limit(limit)).scalars()
    return [_change(row) for row in rows]


def bounds(session: Session) -> tuple[int, int]:
    """The first and last numbers kept (0, 0 when none are)."""
    first, last = session.execute(select(func.min(RunChange.seq), func.max(RunChange.seq))).one()
    return int(first or 0), int(last or 0)


def resumable(first: int, last: int, seq: int) -> bool:
    """Whether every change after ``seq`` is still kept: none after it was pruned (the
    first kept follows it at once, or comes before it), and it is not from the future
    (a number never handed out: another database, or a made-up id)."""
    if last == 0:
        return False
    return first - 1 <= seq <= last


def prune(session: Session, before: datetime) -> int:
    """Forget the changes made before ``before``; returns how many."""
    result = session.execute(delete(RunChange).where(RunChange.at < before))
    return result.rowcount or 0


def concerns(change: Change, principal: Principal) -> bool:
    """Whether the change is about a run of the principal's list, the rule of
    ``runs.visible`` (a workspace's runs; in the personal workspace the caller's own, an
    administrator's all; a run's own token its run)."""
    if principal.run_id is not None:
        return change.run_id == principal.run_id
    if principal.workspace_id is not None:
        return change.workspace_id == principal.workspace_id
    if principal.is_admin:
        return True
    return change.owner_id == principal.user_id and change.workspace_id is None


def progress_of(session: Session, run_id: str) -> Run | None:
    """The run with what its progress is made of loaded (its state, the counters
    Nextflow sent), for a stream to tell its page; None once it is gone."""
    query = select(Run).where(Run.id == run_id, Run.deleted_at.is_(None))
    return session.execute(
        query.options(load_only(Run.id, Run.state, Run.progress))
    ).scalar_one_or_none()


def active(session: Session, run_id: str) -> bool:
    """Whether the run exists and has not ended."""
    state = session.execute(select(Run.state).where(Run.id == run_id)).scalar_one_or_none()
    return state is not None and not is_terminal(state)
