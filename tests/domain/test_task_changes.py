"""A run's event stream carries the task records written since its last event
(task_changes.TaskCursor): each record once, those a little behind the newest (another
host's clock, a late commit) too, and none when more than an event carries were written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from tests.conftest import submit
from wes_gateway.domain import task_changes
from wes_gateway.domain.models import Task
from wes_gateway.domain.task_changes import TaskCursor
from wes_gateway.infra.db import Database

T0 = datetime(2026, 5, 6, 12, 0, tzinfo=UTC)


def _write(db: Database, run_id: str, at: datetime, *task_ids: int, status="RUNNING") -> None:
    with db.session() as session:
        for task_id in task_ids:
            task = session.query(Task).filter_by(run_id=run_id, task_id=task_id).one_or_none()
            if task is None:
                task = Task(run_id=run_id, task_id=task_id, name=f"ALIGN ({task_id})")
                session.add(task)
            task.process, task.status, task.updated_at = "ALIGN", status, at
        session.commit()


def _changed(db: Database, cursor: TaskCursor) -> list[tuple[int, str]] | None:
    with db.session() as session:
        found = cursor.changed(session)
    return None if found is None else sorted((task.task_id, task.status) for task in found)


def test_each_written_record_is_handed_out_once(client, alice, db):
    run_id = submit(client, alice)
    cursor = TaskCursor(run_id, T0)
    _write(db, run_id, T0 - timedelta(minutes=1), 99)  # before the follower came
    assert _changed(db, cursor) == []
    _write(db, run_id, T0 + timedelta(seconds=1), 1, 2)
    assert _changed(db, cursor) == [(1, "RUNNING"), (2, "RUNNING")]
    assert _changed(db, cursor) == []  # nothing new
    _write(db, run_id, T0 + timedelta(seconds=2), 1, status="COMPLETED")
    assert _changed(db, cursor) == [(1, "COMPLETED")]


def test_a_record_a_little_behind_the_newest_is_found(client, alice, db):
    run_id = submit(client, alice)
    cursor = TaskCursor(run_id, T0)
    _write(db, run_id, T0 + timedelta(seconds=10), 1)
    assert _changed(db, cursor) == [(1, "RUNNING")]
    # Written by a host whose clock is 3 s behind, after the record above was read.
    _write(db, run_id, T0 + timedelta(seconds=7), 2)
    assert _changed(db, cursor) == [(2, "RUNNING")]
    # Stamped further back than the slack (as a run's end stamps its unfinished tasks
    # with the time Nextflow reported): not found here; the stream has the page re-read.
    _write(db, run_id, T0 + timedelta(seconds=10) - 2 * task_changes.SLACK, 3)
    assert _changed(db, cursor) == []


def test_more_records_than_an_event_carries_are_none(client, alice, db):
    run_id = submit(client, alice)
    cursor = TaskCursor(run_id, T0)
    many = range(1, task_changes.MOST + 2)
    _write(db, run_id, T0 + timedelta(seconds=1), *many)
    assert _changed(db, cursor) is None  # read the list instead
    # The next event carries what came after, not the many again.
    _write(db, run_id, T0 + timedelta(seconds=2), 500)
    assert _changed(db, cursor) == [(500, "RUNNING")]
    # Exactly as many as an event carries: carried.
    _write(db, run_id, T0 + timedelta(seconds=3), *range(1, task_changes.MOST + 1))
    assert len(_changed(db, cursor) or []) == task_changes.MOST


def test_the_records_are_read_from_the_run_s_latest_writes_not_from_all_its_tasks(
    client, alice, db
):
    """Whatever the size of the run, a look reads its newest writes through their index:
    no scan of the run's tasks, no sort of them."""
    if db.dialect != "sqlite":
        pytest.skip("the plan checked is SQLite's")
    run_id = submit(client, alice)
    cursor = TaskCursor(run_id, T0)
    statements: list[tuple[str, tuple]] = []

    def seen(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT") and "FROM tasks" in statement:
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        _changed(db, cursor)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    ((statement, parameters),) = statements
    with db.engine.connect() as connection:
        plan = " | ".join(
            row[-1]
            for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        )
    assert "ix_tasks_run_updated" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
