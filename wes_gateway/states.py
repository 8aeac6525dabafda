"""The run state machine: WES states, the Tower status derived from them, and the one
function that moves a run from one state to another.

The canonical state of a run is the WES ``State``. Everything else (the Tower status, what
counts as finished, which moves are legal) is derived here and nowhere else.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import func, literal, or_, select, update
from sqlalchemy.orm import Session


class State(enum.StrEnum):
    UNKNOWN = "UNKNOWN"
    QUEUED = "QUEUED"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETE = "COMPLETE"
    EXECUTOR_ERROR = "EXECUTOR_ERROR"
    SYSTEM_ERROR = "SYSTEM_ERROR"
    CANCELED = "CANCELED"
    CANCELING = "CANCELING"
    PREEMPTED = "PREEMPTED"


class TowerStatus(enum.StrEnum):
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"


TOWER_STATUS: dict[State, TowerStatus] = {
    State.QUEUED: TowerStatus.SUBMITTED,
    State.INITIALIZING: TowerStatus.SUBMITTED,
    State.RUNNING: TowerStatus.RUNNING,
    State.PAUSED: TowerStatus.RUNNING,
    State.COMPLETE: TowerStatus.SUCCEEDED,
    State.EXECUTOR_ERROR: TowerStatus.FAILED,
    State.SYSTEM_ERROR: TowerStatus.FAILED,
    State.PREEMPTED: TowerStatus.FAILED,
    State.CANCELING: TowerStatus.CANCELLED,
    State.CANCELED: TowerStatus.CANCELLED,
    State.UNKNOWN: TowerStatus.UNKNOWN,
}

# The same table read backwards: the WES states behind each Tower status.
STATES_OF_TOWER_STATUS: dict[TowerStatus, frozenset[State]] = {
    status: frozenset(state for state, shown in TOWER_STATUS.items() if shown is status)
    for status in TowerStatus
}


class TaskStatus(enum.StrEnum):
    """A task's status, as Nextflow reports it and Tower shows it (Seqera's TaskStatus)."""

    NEW = "NEW"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    CACHED = "CACHED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ABORTED = "ABORTED"


# A task in one of these has ended; with any other status, or none yet, it is unfinished.
FINAL_TASK_STATUSES: frozenset[TaskStatus] = frozenset(
    {TaskStatus.CACHED, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ABORTED}
)

TERMINAL: frozenset[State] = frozenset(
    {State.COMPLETE, State.EXECUTOR_ERROR, State.SYSTEM_ERROR, State.CANCELED, State.PREEMPTED}
)
ACTIVE: frozenset[State] = frozenset(State) - TERMINAL

_ENDINGS = TERMINAL  # any live run may end in any terminal state…

# …with two exceptions written into the table below: a QUEUED run has not started, so it
# cannot be PREEMPTED, and a CANCELING run can still end truthfully in any terminal state
# (it may have finished before the kill landed).
LEGAL_MOVES: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset(
        {State.INITIALIZING, State.RUNNING, State.CANCELING, State.UNKNOWN} | _ENDINGS
    )
    - {State.PREEMPTED},
    State.INITIALIZING: frozenset(
        {State.QUEUED, State.RUNNING, State.CANCELING, State.UNKNOWN} | _ENDINGS
    ),
    State.RUNNING: frozenset({State.PAUSED, State.CANCELING, State.UNKNOWN} | _ENDINGS),
    State.PAUSED: frozenset({State.RUNNING, State.CANCELING, State.UNKNOWN} | _ENDINGS),
    State.CANCELING: _ENDINGS,
    # An UNKNOWN run lost contact; news of it (a heartbeat, a backend poll) may bring it back.
    State.UNKNOWN: frozenset({State.RUNNING, State.PAUSED, State.CANCELING} | _ENDINGS),
    **{state: frozenset() for state in TERMINAL},
}


def tower_status(state: State) -> TowerStatus:
    return TOWER_STATUS[state]


def is_terminal(state: State) -> bool:
    return state in TERMINAL


def can_move(source: State, target: State) -> bool:
    return target in LEGAL_MOVES[source]


def sources_of(target: State) -> frozenset[State]:
    """Every state a run may move to ``target`` from."""
    return frozenset(source for source, targets in LEGAL_MOVES.items() if target in targets)


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
    # Imported here because the models import State from this module.
    from wes_gateway.models import Run, RunStateChange

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
            if to in TERMINAL:
                _end_unfinished_tasks(session, run_id, when)
            session.add(
                RunStateChange(
                    run_id=run_id, from_state=current, to_state=to, at=when, reason=reason[:1000]
                )
            )
            session.flush()
            if to is State.RUNNING and current in (State.QUEUED, State.INITIALIZING):
                from wes_gateway import metrics

                created = session.execute(select(Run.created_at).where(Run.id == run_id))
                metrics.run_started(created.scalar_one(), when)
            return current
    return None


def _end_unfinished_tasks(session: Session, run_id: str, when: datetime) -> None:
    """One UPDATE: every task of the run not known to have ended becomes ABORTED, the
    status Nextflow itself gives the tasks it stops, ending no later than its run.

    Taken with the run's row already updated (and so locked) by the caller: a trace call
    that records tasks holds that row first (see ``trace.progress``), so its records are
    either in before this statement reads them or refused after."""
    from wes_gateway.models import Task

    session.execute(
        update(Task)
        .where(
            Task.run_id == run_id,
            or_(Task.status.is_(None), Task.status.not_in(sorted(FINAL_TASK_STATUSES))),
        )
        .values(
            status=TaskStatus.ABORTED.value,
            complete=func.coalesce(Task.complete, literal(when, Task.complete.type)),
            updated_at=when,
        )
        .execution_options(synchronize_session=False)
    )
