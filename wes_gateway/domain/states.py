"""The run state machine: WES states, the Tower status derived from them, and the one
function that moves a run from one state to another.

The canonical state of a run is the WES ``State``. Everything else (the Tower status, what
counts as finished, which moves are legal) is derived here and nowhere else.
"""

from __future__ import annotations

import enum


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


def end_state(current: State, outcome: State) -> State:
    """The state a run in ``current`` ends in when its head job reports ``outcome`` (by
    the trace's ``complete`` or by the backend's final status): a run being cancelled
    ends CANCELED whatever its job reports; any other run ends as reported."""
    return State.CANCELED if current is State.CANCELING else outcome


def is_terminal(state: State) -> bool:
    return state in TERMINAL


def can_move(source: State, target: State) -> bool:
    return target in LEGAL_MOVES[source]


def sources_of(target: State) -> frozenset[State]:
    """Every state a run may move to ``target`` from."""
    return frozenset(source for source, targets in LEGAL_MOVES.items() if target in targets)


class BackendStatus(enum.StrEnum):
    PENDING = "PENDING"  # accepted by the backend, not started
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"  # nextflow exited 0
    FAILED = "FAILED"  # nextflow exited non-zero: the workflow failed
    SYSTEM_FAILED = "SYSTEM_FAILED"  # the head job could not run or vanished
    PREEMPTED = "PREEMPTED"  # the platform took the machine back
    STOPPED = "STOPPED"  # stopped on our request


# The one mapping from what a backend reports to the run's WES state.
STATE_OF: dict[BackendStatus, State] = {
    BackendStatus.PENDING: State.INITIALIZING,
    BackendStatus.RUNNING: State.RUNNING,
    BackendStatus.SUCCEEDED: State.COMPLETE,
    BackendStatus.FAILED: State.EXECUTOR_ERROR,
    BackendStatus.SYSTEM_FAILED: State.SYSTEM_ERROR,
    BackendStatus.PREEMPTED: State.PREEMPTED,
    BackendStatus.STOPPED: State.CANCELED,
}
