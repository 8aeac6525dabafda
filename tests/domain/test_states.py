"""The state machine: every (from, to) pair, legal or not, through the real SQL
compare-and-set, with the history it leaves."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from wes_gateway.domain import tokens
from wes_gateway.domain.models import Run, RunStateChange
from wes_gateway.domain.states import (
    LEGAL_MOVES,
    TERMINAL,
    State,
    TowerStatus,
    can_move,
    is_terminal,
    tower_status,
)
from wes_gateway.domain.transitions import transition

EXPECTED_TOWER = {
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

# The legal moves, written out by hand so the table in the module is checked, not echoed.
LEGAL = (
    {
        (State.QUEUED, target)
        for target in [
            State.INITIALIZING,
            State.RUNNING,
            State.CANCELING,
            State.UNKNOWN,
            State.COMPLETE,
            State.EXECUTOR_ERROR,
            State.SYSTEM_ERROR,
            State.CANCELED,
        ]
    }
    | {
        (State.INITIALIZING, target)
        for target in [
            State.QUEUED,
            State.RUNNING,
            State.CANCELING,
            State.UNKNOWN,
            State.COMPLETE,
            State.EXECUTOR_ERROR,
            State.SYSTEM_ERROR,
            State.CANCELED,
            State.PREEMPTED,
        ]
    }
    | {
        (source, target)
        for source in [State.RUNNING, State.PAUSED]
        for target in [
            State.CANCELING,
            State.UNKNOWN,
            State.COMPLETE,
            State.EXECUTOR_ERROR,
            State.SYSTEM_ERROR,
            State.CANCELED,
            State.PREEMPTED,
        ]
    }
    | {(State.RUNNING, State.PAUSED), (State.PAUSED, State.RUNNING)}
    | {
        (State.CANCELING, target)
        for target in [
            State.COMPLETE,
            State.EXECUTOR_ERROR,
            State.SYSTEM_ERROR,
            State.CANCELED,
            State.PREEMPTED,
        ]
    }
    | {
        (State.UNKNOWN, target)
        for target in [
            State.RUNNING,
            State.PAUSED,
            State.CANCELING,
            State.COMPLETE,
            State.EXECUTOR_ERROR,
            State.SYSTEM_ERROR,
            State.CANCELED,
            State.PREEMPTED,
        ]
    }
)

ALL_PAIRS = list(itertools.product(State, State))


@pytest.mark.backing_independent
@pytest.mark.parametrize("state", list(State))
def test_tower_status_table(state):
    assert tower_status(state) is EXPECTED_TOWER[state]


@pytest.mark.backing_independent
def test_terminal_states():
    assert {
        State.COMPLETE,
        State.EXECUTOR_ERROR,
        State.SYSTEM_ERROR,
        State.CANCELED,
        State.PREEMPTED,
    } == TERMINAL
    assert all(not LEGAL_MOVES[state] for state in TERMINAL)
    assert not is_terminal(State.CANCELING) and not is_terminal(State.UNKNOWN)


@pytest.mark.backing_independent
@pytest.mark.parametrize("source,target", ALL_PAIRS, ids=lambda s: s.value)
def test_can_move_matches_table(source, target):
    assert can_move(source, target) is ((source, target) in LEGAL)


@pytest.fixture
def owner(db):
    with db.session() as session:
        return tokens.ensure_user(session, "state-owner").id


def _run_in(db, owner, state: State) -> str:
    with db.session() as session:
        run = Run(id=f"R{state.value[:12]:_<13}", owner_id=owner, state=state)
        session.add(run)
        return run.id


@pytest.mark.parametrize("source,target", ALL_PAIRS, ids=lambda s: s.value)
def test_transition_in_sql(db, owner, source, target):
    run_id = _run_in(db, owner, source)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with db.session() as session:
        left = transition(session, run_id, target, "test move", at=when)
    with db.session() as session:
        run = session.get(Run, run_id)
        history = (
            session.execute(select(RunStateChange).where(RunStateChange.run_id == run_id))
            .scalars()
            .all()
        )
    if (source, target) in LEGAL:
        assert left is source
        assert run.state is target
        assert [(h.from_state, h.to_state, h.reason) for h in history] == [
            (source, target, "test move")
        ]
        assert history[0].at == when
        assert (run.end_time == when) is (target in TERMINAL)
        if target is State.RUNNING:
            assert run.start_time == when
    else:
        assert left is None
        assert run.state is source
        assert history == []
        assert run.end_time is None


def test_allowed_from_narrows_the_move(db, owner):
    run_id = _run_in(db, owner, State.RUNNING)
    with db.session() as session:
        assert (
            transition(session, run_id, State.INITIALIZING, "x", allowed_from={State.QUEUED})
            is None
        )
        assert transition(session, run_id, State.COMPLETE, "x", allowed_from={State.QUEUED}) is None
    with db.session() as session:
        assert session.get(Run, run_id).state is State.RUNNING


def test_start_time_is_kept_when_a_run_comes_back(db, owner):
    run_id = _run_in(db, owner, State.QUEUED)
    first = datetime(2026, 1, 1, tzinfo=UTC)
    later = datetime(2026, 1, 2, tzinfo=UTC)
    with db.session() as session:
        transition(session, run_id, State.RUNNING, "began", at=first)
        transition(session, run_id, State.UNKNOWN, "silent", at=later)
        transition(session, run_id, State.RUNNING, "heartbeat", at=later)
    with db.session() as session:
        assert session.get(Run, run_id).start_time == first


def test_unknown_run_is_refused(db):
    with db.session() as session:
        assert transition(session, "NoSuchRun00000", State.RUNNING, "x") is None


def test_two_sessions_race_one_wins(db, owner):
    """Both read QUEUED; only the first UPDATE matches, the second finds the state moved."""
    run_id = _run_in(db, owner, State.QUEUED)
    first, second = db.sessions(), db.sessions()
    try:
        assert (
            transition(first, run_id, State.INITIALIZING, "worker 1", allowed_from={State.QUEUED})
            is State.QUEUED
        )
        first.commit()
        assert (
            transition(second, run_id, State.INITIALIZING, "worker 2", allowed_from={State.QUEUED})
            is None
        )
        second.commit()
    finally:
        first.close()
        second.close()
    with db.session() as session:
        history = (
            session.execute(select(RunStateChange.reason).where(RunStateChange.run_id == run_id))
            .scalars()
            .all()
        )
    assert history == ["worker 1"]


@pytest.mark.backing_independent
def test_tower_status_read_backwards():
    from wes_gateway.domain.states import STATES_OF_TOWER_STATUS

    for status, states in STATES_OF_TOWER_STATUS.items():
        assert states == {state for state, shown in EXPECTED_TOWER.items() if shown is status}
    assert STATES_OF_TOWER_STATUS[TowerStatus.FAILED] == {
        State.EXECUTOR_ERROR,
        State.SYSTEM_ERROR,
        State.PREEMPTED,
    }
