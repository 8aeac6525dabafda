"""The state machine at work: the one function that moves a run from one state to
another in the database, with what a move brings along (the run's end ends its tasks,
a run that starts is counted). The states and the legal moves are in ``states``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import exists, func, literal, or_, select, update
from sqlalchemy.orm import Session

from wes_gateway.domain import run_changes, task_loads
from wes_gateway.domain.models import Run, RunStateChange, Task
from wes_gateway.domain.states import FINAL_TASK_STATUSES, TERMINAL, State, TaskStatus, sources_of
from wes_gateway.infra import metrics


def transition(
    session: Session,
    run_id: str,
    to: State,
    reason: str,
    *,
    allowed_from: Iterable[State] | None = None,
    at: datetime | None = None,
) -> State | None:
    """Move run ``run_id`` to ``to`` if that is legal from its current state.

    A compare-and-set: the UPDATE names the state it read, so two workers racing on one
    run cannot both win, and a move that became illegal meanwhile (the run finished) is
    refused rather than overwriting. ``allowed_from`` narrows the legal sources further
    (the submitter only takes QUEUED runs). Records the move in the state history.

    A run that ends (a terminal state) ends its unfinished tasks with it, in the same
    transaction: whichever path ended it, no task of a finished run shows as running.

    Returns the state the run left, or ``None`` when the move was refused (illegal, not
    allowed from the current state, already there, or no such run). Does not commit.
    """
    sources = sources_of(to)
    if allowed_from is not None:
        sources &= frozenset(allowed_from)
    when = at or datetime.now(UTC)
    for _ in range(5):
        current = session.execute(select(Run.state).where(Run.id == run_id)).scalar_one_or_none()
        if current is None or current not in sources:
            return None
        values: dict[str, object] = {"state": to, "updated_at": when}
        if to is State.RUNNING:
            values["start_time"] = func.coalesce(Run.start_time, when)  # set once
        if to in TERMINAL:
            values["end_time"] = when
        result = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.state == current)
            .values(**values)
            .execution_options(synchronize_session="fetch")
        )
        if result.rowcount == 1:
            run_changes.note(session, run_id, run_changes.STATUS)
            if to in TERMINAL:
                _end_unfinished_tasks(session, run_id, when)
                run_changes.note(session, run_id, run_changes.TASKS)
            session.add(
                RunStateChange(
                    run_id=run_id, from_state=current, to_state=to, at=when, reason=reason[:1000]
                )
            )
            session.flush()
            if to is State.RUNNING and current in (State.QUEUED, State.INITIALIZING):
                created = session.execute(select(Run.created_at).where(Run.id == run_id))
                metrics.run_started(created.scalar_one(), when)
            return current
    return None


def _end_unfinished_tasks(session: Session, run_id: str, when: datetime) -> None:
    """One UPDATE: every task of the run not known to have ended becomes ABORTED, the
    status Nextflow itself gives the tasks it stops, ending no later than its run.

    Taken with the run's row already updated (and so locked) by the caller: a trace call
    that records tasks holds that row first (see ``trace.progress``), so its records are
    either in before this statement reads them or refused after. The run's kept progress
    (``task_loads``) moves them to aborted in the same transaction."""
    unfinished = (
        Task.run_id == run_id,
        or_(Task.status.is_(None), Task.status.not_in(sorted(FINAL_TASK_STATUSES))),
    )
    kept = task_loads.tracked(session, run_id)
    before: dict[int, task_loads.TaskState] = {}
    if kept:
        rows = session.execute(
            select(Task.task_id, Task.process, Task.status, Task.data).where(*unfinished)
        )
        before = {
            row.task_id: (row.process, row.status, task_loads.record_of(row.data)) for row in rows
        }
    session.execute(
        update(Task)
        .where(*unfinished)
        .values(
            status=TaskStatus.ABORTED.value,
            complete=func.coalesce(Task.complete, literal(when, Task.complete.type)),
            updated_at=when,
        )
        .execution_options(synchronize_session=False)
    )
    if kept:
        aborted = TaskStatus.ABORTED.value
        after = {
            task_id: (process, aborted, data) for task_id, (process, _, data) in before.items()
        }
        task_loads.record(session, run_id, before, after)
    elif session.execute(select(exists().where(Task.run_id == run_id))).scalar():
        task_loads.reconcile(session, run_id)
