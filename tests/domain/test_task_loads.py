"""A run's progress is kept as its task records are written (task_loads): whatever the
trace calls do (random records, duplicates, late and out-of-order calls, retried tasks,
a cancel, a restart of the service, counters lost), the kept counters equal a recount of
the task table, and the progress a client reads says the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from tests.conftest import submit
from tests.domain.test_trace import run_token
from wes_gateway.domain import run_stats, runs, task_loads, tokens, trace
from wes_gateway.domain.models import Run, TaskLoad
from wes_gateway.domain.states import State
from wes_gateway.domain.transitions import transition
from wes_gateway.infra.db import Database

TOWER = "/api"
PROCESSES = ("NFCORE:ALIGN", "NFCORE:SORT", None)
STATUSES = ("NEW", "SUBMITTED", "RUNNING", "COMPLETED", "FAILED", "CACHED", "ABORTED", None)
T0 = datetime(2026, 5, 6, 12, 0, tzinfo=UTC)


def _time(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@st.composite
def task_records(draw) -> dict:
    task_id = draw(st.integers(1, 14))
    status = draw(st.sampled_from(STATUSES))
    begun = draw(st.integers(0, 600))
    record = {
        "taskId": task_id,
        "name": f"task ({task_id})",
        "process": draw(st.sampled_from(PROCESSES)),
        "status": status,
        "executor": "slurm" if task_id % 3 else "local",
        "cpus": draw(st.integers(0, 16)),
        "errorAction": draw(st.sampled_from([None, "IGNORE", "RETRY", "TERMINATE", "FINISH"])),
        "memory": draw(st.integers(0, 2**34)),
        "realtime": draw(st.integers(0, 10**7)),
        "pcpu": draw(st.floats(0, 1600, allow_nan=False)),
        "peakRss": draw(st.integers(0, 2**33)),
        "rchar": draw(st.integers(0, 2**40)),
        "wchar": draw(st.integers(0, 2**40)),
        "volCtxt": draw(st.one_of(st.none(), st.integers(0, 10**6))),
        "invCtxt": draw(st.sampled_from([None, "12", 3.5, True])),
        "submit": _time(begun),
    }
    if status not in ("NEW", "SUBMITTED", None):
        record["start"] = _time(begun + 1)
    if status in ("COMPLETED", "FAILED", "ABORTED"):
        record["complete"] = _time(begun + draw(st.integers(1, 300)))
    return record


# One step: a progress call with these records, the same call again, an older call
# arriving late, a heartbeat, the service restarting, the counters lost (as before the
# migration kept them), the run cancelled, or ending.
STEPS = st.one_of(
    st.tuples(st.just("progress"), st.lists(task_records(), min_size=0, max_size=12)),
    st.tuples(st.just("duplicate"), st.none()),
    st.tuples(st.just("late"), st.integers(0, 20)),
    st.tuples(st.just("heartbeat"), st.none()),
    st.tuples(st.just("restart"), st.none()),
    st.tuples(st.just("lose_counters"), st.none()),
    st.tuples(st.just("cancel"), st.none()),
    st.tuples(st.just("complete"), st.booleans()),
)


def _kept(session, run_id: str) -> dict[str, dict]:
    rows = session.execute(select(TaskLoad).where(TaskLoad.run_id == run_id)).scalars()
    return {
        row.process: {column: getattr(row, column) for column in task_loads.SUMMED}
        for row in rows
        if row.tasks  # a process left by its only task keeps a row of zeros
    }


def _recounted(session, run_id: str) -> dict[str, dict]:
    return {
        key: {column: values[column] for column in task_loads.SUMMED}
        for key, values in task_loads.recount(session, run_id).items()
    }


def _assert_kept_equals_recount(db: Database, run_id: str) -> None:
    with db.session() as session:
        if not task_loads.tracked(session, run_id):
            task_loads.read(session, run_id)  # the recount a reader makes
        assert _kept(session, run_id) == _recounted(session, run_id)
        for row in session.execute(select(TaskLoad).where(TaskLoad.run_id == run_id)).scalars():
            assert row.peak_tasks >= row.running >= 0
            assert row.peak_cpus >= row.load_cpus >= 0
            assert row.peak_memory >= row.load_memory >= 0
        # The workflow stats read from the kept row are those the task records make.
        kept_rows = session.execute(select(TaskLoad).where(TaskLoad.run_id == run_id)).scalars()
        assert task_loads.stats_counts(kept_rows) == run_stats.counted(
            runs.tasks_for_progress(session, run_id)
        )
        whole = session.get(TaskLoad, (run_id, task_loads.WHOLE_RUN))
        expected = sorted(task_loads.recount(session, run_id).get("", {}).get("executors", []))
        assert whole is None or sorted(whole.executors or []) == expected


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEPS, min_size=1, max_size=14))
def test_kept_counters_equal_a_recount_of_the_task_table(client, alice, db, steps):
    run_id = submit(client, alice)
    token = run_token(db, run_id)["Authorization"].split()[1]
    database = db
    with database.session() as session:
        who = tokens.authenticate(session, token)
        owner = tokens.authenticate(session, alice["Authorization"].split()[1])
        transition(session, run_id, State.INITIALIZING, "a worker started it")  # as workers do
        trace.create(session, who, {"workflowId": run_id})
        trace.begin(session, who, run_id, {"workflow": {"runName": "kept"}})
        assert session.get(Run, run_id).state is State.RUNNING
    sent: list[list[dict]] = []
    restarted: list[Database] = []
    try:
        for kind, argument in steps:
            with database.session() as session:
                if kind == "progress":
                    sent.append(argument)
                    trace.progress(session, who, run_id, {"tasks": argument})
                elif kind == "duplicate" and sent:
                    trace.progress(session, who, run_id, {"tasks": sent[-1]})
                elif kind == "late" and sent:
                    trace.progress(session, who, run_id, {"tasks": sent[argument % len(sent)]})
                elif kind == "heartbeat":
                    trace.heartbeat(session, who, run_id, {"progress": {"running": 3}})
                elif kind == "restart":
                    database = Database(db.url)
                    restarted.append(database)
                elif kind == "lose_counters":
                    session.execute(delete(TaskLoad).where(TaskLoad.run_id == run_id))
                    session.commit()
                elif kind == "cancel":
                    if session.get(Run, run_id).state is State.RUNNING:
                        runs.cancel_run(session, owner, run_id)
                        trace.complete(session, who, run_id, {"workflow": {"success": False}})
                        assert session.get(Run, run_id).state is State.CANCELED
                elif kind == "complete":
                    trace.complete(session, who, run_id, {"workflow": {"success": argument}})
            _assert_kept_equals_recount(database, run_id)
    finally:
        for other in restarted:
            other.dispose()


def _progress(client, headers, run_id: str) -> dict:
    response = client.get(f"{TOWER}/workflow/{run_id}/progress", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["progress"]


def _record(task_id: int, status: str, **more) -> dict:
    return {
        "taskId": task_id,
        "name": f"ALIGN ({task_id})",
        "process": "ALIGN",
        "status": status,
        "cpus": 2,
        "memory": 1024,
        **more,
    }


def test_peaks_are_the_most_that_ran_at_once_not_the_load_now(client, alice, db):
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
    with db.session() as session:
        transition(session, run_id, State.INITIALIZING, "a worker started it")
    client.post("/api/trace/create", headers=headers, json={"workflowId": run_id})
    client.put(f"/api/trace/{run_id}/begin", headers=headers, json={"workflow": {}})

    def report(*records: dict) -> None:
        response = client.put(
            f"/api/trace/{run_id}/progress", headers=headers, json={"tasks": list(records)}
        )
        assert response.status_code == 200, response.text

    report(*(_record(n, "RUNNING") for n in (1, 2, 3)))
    report(*(_record(n, "COMPLETED", realtime=1000, pcpu=50.0) for n in (1, 2)))
    report(_record(4, "RUNNING"))
    load = _progress(client, alice, run_id)["workflowProgress"]
    assert (load["loadTasks"], load["loadCpus"], load["loadMemory"]) == (2, 4, 2048)
    assert (load["peakTasks"], load["peakCpus"], load["peakMemory"]) == (3, 6, 3072)
    assert load["running"] == 2 and load["succeeded"] == 2
    assert load["cpuTime"] == 4000 and load["cpuLoad"] == 1000 and load["cpuEfficiency"] == 25.0
    (process,) = _progress(client, alice, run_id)["processesProgress"]
    assert process["process"] == "ALIGN" and process["peakTasks"] == 3
    # The run's end aborts what still runs: no load, the peak stays.
    client.put(
        f"/api/trace/{run_id}/complete", headers=headers, json={"workflow": {"success": False}}
    )
    load = _progress(client, alice, run_id)["workflowProgress"]
    assert (load["running"], load["aborted"], load["loadTasks"], load["peakTasks"]) == (0, 2, 0, 3)


def test_tasks_written_before_counters_were_kept_are_recounted_once(client, alice, db):
    """As after the upgrade to kept counters: the first read recounts the tasks (peaks
    from their start and end times) and keeps the result."""
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
    client.post("/api/trace/create", headers=headers, json={"workflowId": run_id})
    records = [
        _record(1, "COMPLETED", start=_time(0), complete=_time(100)),
        _record(2, "COMPLETED", start=_time(50), complete=_time(150)),
        _record(3, "COMPLETED", start=_time(100), complete=_time(200)),  # as 1 ends
        _record(4, "RUNNING", start=_time(120)),
    ]
    client.put(f"/api/trace/{run_id}/progress", headers=headers, json={"tasks": records})
    with db.session() as session:
        session.execute(delete(TaskLoad).where(TaskLoad.run_id == run_id))
        session.commit()
    load = _progress(client, alice, run_id)["workflowProgress"]
    assert (load["succeeded"], load["running"], load["executors"]) == (3, 1, [])
    # 2, 3 and 4 ran together; 1 had ended when 3 began.
    assert (load["peakTasks"], load["peakCpus"], load["peakMemory"]) == (3, 6, 3072)
    with db.session() as session:
        assert _kept(session, run_id) == _recounted(session, run_id)
    described = client.get(f"{TOWER}/workflow/{run_id}", headers=alice).json()
    assert described["progress"]["workflowProgress"]["peakTasks"] == 3


@pytest.mark.parametrize("tasks", [0, 1])
def test_a_run_without_counters_and_with_or_without_tasks_reads(client, alice, db, tasks):
    run_id = submit(client, alice)
    if tasks:
        headers = run_token(db, run_id)
        client.put(
            f"/api/trace/{run_id}/progress", headers=headers, json={"tasks": [_record(1, "NEW")]}
        )
    load = _progress(client, alice, run_id)["workflowProgress"]
    assert load["pending"] == tasks
