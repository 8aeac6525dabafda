"""What a run's end leaves behind, seen through both APIs: the tasks a run left unfinished
end with it (ABORTED, as Nextflow marks the tasks it stops), whichever path ended the run,
and its progress counts agree with its tasks; a head job that failed before it reported
has the error its console ends with in the run's system logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import WES, submit
from tests.domain.test_trace import API, run_token, sample
from tests.live import STANDIN, free_port, group_alive
from wes_gateway.domain import run_files
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import State
from workers import execution


def _record(task_id: int, status: str) -> dict:
    """A task record as Nextflow's progress call carries it (exit 2147483647: none yet)."""
    done = status == "COMPLETED"
    return {
        "taskId": task_id,
        "status": status,
        "name": f"ALIGN ({task_id})",
        "process": "ALIGN",
        "hash": f"0{task_id}/abcdef",
        "exit": 0 if done else 2147483647,
        "submit": "2026-05-06T12:04:20.558Z",
        "start": None if status == "SUBMITTED" else "2026-05-06T12:04:21.558Z",
        "complete": "2026-05-06T12:04:30.558Z" if done else None,
        "cpus": 1,
        "memory": 1024**3,
        "realtime": 9000 if done else None,
    }


def _report_tasks(client, headers, run_id: str) -> None:
    """Nextflow's reports so far: one task done, one running, one submitted."""
    records = [_record(1, "COMPLETED"), _record(2, "RUNNING"), _record(3, "SUBMITTED")]
    progress = {"tasks": records, "progress": {"running": 1, "submitted": 1, "succeeded": 1}}
    response = client.put(f"{API}/{run_id}/progress", headers=headers, json=progress)
    assert response.status_code == 200, response.text


def _begun_run(client, alice, db) -> tuple[str, dict[str, str]]:
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
    for method, path, name in (("post", "/create", "01-create"), ("put", "/begin", "02-begin")):
        url = f"{API}{path}" if path == "/create" else f"{API}/{run_id}{path}"
        assert getattr(client, method)(url, headers=headers, json=sample(name, run_id)).is_success
    _report_tasks(client, headers, run_id)
    return run_id, headers


def _assert_tasks_ended(client, alice, run_id: str) -> None:
    """Through both APIs: no task runs any more, and every count says so."""
    tasks = client.get(f"/api/workflow/{run_id}/tasks", headers=alice).json()["tasks"]
    assert {t["task"]["taskId"]: t["task"]["status"] for t in tasks} == {
        1: "COMPLETED",
        2: "ABORTED",
        3: "ABORTED",
    }
    assert client.get(f"/api/workflow/{run_id}/task/2", headers=alice).json()["task"]["complete"]
    progress = client.get(f"/api/workflow/{run_id}/progress", headers=alice).json()["progress"]
    described = client.get(f"/api/workflow/{run_id}", headers=alice).json()["progress"]
    for shown in (progress, described):  # the dashboard draws describe's progress
        overall = shown["workflowProgress"]
        counts = {key: overall[key] for key in ("pending", "submitted", "running", "aborted")}
        assert counts == {"pending": 0, "submitted": 0, "running": 0, "aborted": 2}, counts
        assert overall["succeeded"] == 1 and overall["loadTasks"] == 0
        (align,) = shown["processesProgress"]
        assert (align["running"], align["submitted"], align["aborted"]) == (0, 0, 2)
    searched = client.get(
        f"/api/workflow/{run_id}/tasks?search=status:RUNNING,SUBMITTED", headers=alice
    ).json()
    assert searched["total"] == 0
    # WES: every task has ended, so every task has an end time.
    listed = client.get(f"{WES}/runs/{run_id}/tasks", headers=alice).json()["task_logs"]
    assert [(task["id"], bool(task.get("end_time"))) for task in listed] == [
        ("1", True),
        ("2", True),
        ("3", True),
    ]


def test_a_cancelled_run_aborts_the_tasks_it_left_running(client, alice, db):
    run_id, headers = _begun_run(client, alice, db)
    assert client.post(f"{WES}/runs/{run_id}/cancel", headers=alice).status_code == 200
    # Nextflow stops; its last task records are lost, its complete call arrives.
    complete = sample("05-complete", run_id)
    complete["workflow"]["success"] = False
    complete["progress"] = {"running": 1, "submitted": 1, "succeeded": 1}
    assert client.put(f"{API}/{run_id}/complete", headers=headers, json=complete).is_success
    described = client.get(f"/api/workflow/{run_id}", headers=alice).json()
    assert described["workflow"]["status"] == "CANCELLED"
    _assert_tasks_ended(client, alice, run_id)
    # A late progress call (a retry, a record in flight) cannot bring a task back to life.
    late = {"tasks": [_record(2, "RUNNING"), _record(4, "RUNNING")], "progress": {"running": 2}}
    assert client.put(f"{API}/{run_id}/progress", headers=headers, json=late).is_success
    _assert_tasks_ended(client, alice, run_id)


def test_a_progress_call_racing_the_end_cannot_revive_a_task(client, alice, db, monkeypatch):
    """The run ends after a progress call came in and before it holds the run's row to
    write its records."""
    from wes_gateway.domain import trace
    from wes_gateway.domain.transitions import transition

    run_id, headers = _begun_run(client, alice, db)
    real_now = trace._now
    ended = []

    def end_then_now():  # the hold's first step
        if not ended:
            with db.session() as other:  # a worker ends the run meanwhile
                transition(other, run_id, State.SYSTEM_ERROR, "the head job vanished")
            ended.append(True)
        return real_now()

    monkeypatch.setattr(trace, "_now", end_then_now)
    late = {"tasks": [_record(2, "RUNNING"), _record(3, "RUNNING")], "progress": {"running": 2}}
    assert client.put(f"{API}/{run_id}/progress", headers=headers, json=late).is_success
    monkeypatch.undo()
    assert ended
    _assert_tasks_ended(client, alice, run_id)


@pytest.mark.parametrize("end", ["EXECUTOR_ERROR", "SYSTEM_ERROR"])
def test_every_path_to_an_end_aborts_unfinished_tasks(client, alice, db, end):
    """The same whoever ends the run: here the sweep and the poll's verdicts, by the
    state machine they all go through."""
    from wes_gateway.domain.transitions import transition

    run_id, _ = _begun_run(client, alice, db)
    with db.session() as session:
        transition(session, run_id, State(end), "the head job ended")
    _assert_tasks_ended(client, alice, run_id)


def test_a_run_that_ended_with_only_counters_shows_no_running_task(client, alice, db):
    """No task records (all lost), only the counters Nextflow sent: on an ended run the
    unfinished ones count as aborted."""
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
    client.put(f"{API}/{run_id}/begin", headers=headers, json=sample("02-begin", run_id))
    heartbeat = {"progress": {"running": 2, "submitted": 1, "pending": 1, "succeeded": 3}}
    assert client.put(f"{API}/{run_id}/heartbeat", headers=headers, json=heartbeat).is_success
    assert client.post(f"{WES}/runs/{run_id}/cancel", headers=alice).status_code == 200
    complete = sample("05-complete", run_id)
    complete["workflow"]["success"] = False
    complete.pop("progress")
    assert client.put(f"{API}/{run_id}/complete", headers=headers, json=complete).is_success
    overall = client.get(f"/api/workflow/{run_id}/progress", headers=alice).json()["progress"][
        "workflowProgress"
    ]
    assert {key: overall[key] for key in ("pending", "submitted", "running", "aborted")} == {
        "pending": 0,
        "submitted": 0,
        "running": 0,
        "aborted": 4,
    }
    assert overall["succeeded"] == 3


@pytest.fixture
def executor(db, settings):
    worker_settings = settings.model_copy(update={"nextflow": str(STANDIN), "cancel_grace": 5.0})
    return execution.Executor(db=db, settings=worker_settings)


def test_a_killed_head_job_aborts_the_tasks_it_left_running(client, alice, db, executor):
    run_id = submit(client, alice, workflow_params='{"standin_hang": "true"}')
    execution.submit(executor, run_id)
    with db.session() as session:
        run = session.get(Run, run_id)
        assert run.state is State.RUNNING
        pid = json.loads(run.backend_handle)["pid"]
    headers = run_token(db, run_id)
    _report_tasks(client, headers, run_id)
    os.killpg(pid, signal.SIGKILL)  # the machine is lost: nothing more is reported
    deadline = time.monotonic() + 20
    while execution.poll_active(executor):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    while group_alive(pid):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    status = client.get(f"{WES}/runs/{run_id}/status", headers=alice).json()["state"]
    assert status == "SYSTEM_ERROR"
    _assert_tasks_ended(client, alice, run_id)
    assert Path(executor.run_dir(run_id)).is_dir()


# -- a head job that failed before it reported: its console's error ------------------------


def _console(tmp_path: Path, text: str) -> Path:
    (tmp_path / "nf-R.txt").write_text(text)
    return tmp_path


def _standin_console(tmp_path: Path, version: str) -> tuple[str, str]:
    """The console of a stand-in run whose -with-tower endpoint answers nothing, as the
    local head job writes it (stdout and stderr in one file). Returns it and the URL."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    launch = tmp_path / "launch"
    launch.mkdir()
    with open(tmp_path / "nf-R.txt", "w") as console:
        subprocess.run(
            [str(STANDIN), "-log", "../nf-R.log", "run", "nf-core/demo", "-with-tower", nowhere],
            cwd=launch,
            stdout=console,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "TOWER_ACCESS_TOKEN": "x" * 40,
                "TOWER_WORKFLOW_ID": "R",
                "STANDIN_NEXTFLOW_VERSION": version,
            },
            timeout=30,
            check=False,
        )
    return (tmp_path / "nf-R.txt").read_text(), nowhere


@pytest.mark.backing_independent
def test_the_console_error_of_nextflow_before_25_04_is_its_last_paragraph(tmp_path):
    console, nowhere = _standin_console(tmp_path, "24.10.4")
    assert "N E X T F L O W" in console
    assert run_files.console_error(tmp_path, "R") == (
        f"Unable to connect to Seqera Platform API: {nowhere}"
    )


@pytest.mark.backing_independent
def test_the_console_error_of_nextflow_26_04_is_its_error_block(tmp_path):
    _, nowhere = _standin_console(tmp_path, "26.04.0")
    assert run_files.console_error(tmp_path, "R").splitlines() == [
        "ERROR ~ Abort exception produced when notifying an event - Unexpected HTTP response",
        f"- endpoint    : {nowhere}/trace/create",
        "- status code : 0",
        f"- response msg: Unable to connect to Seqera Platform API: {nowhere}",
        "",
        "",
        " -- Check '../nf-R.log' file for details",
    ]


@pytest.mark.backing_independent
def test_the_last_error_block_is_taken_and_bounded(tmp_path):
    first = "ERROR ~ an earlier error\n\n -- Check '.nextflow.log' file for details\n"
    causes = "".join(f"  cause line {number}\n" for number in range(200))
    _console(
        tmp_path, "N E X T F L O W\n\n" + first + "WARN: more\nERROR ~ the last one\n" + causes
    )
    block = run_files.console_error(tmp_path, "R").splitlines()
    assert block[0] == "ERROR ~ the last one"
    assert len(block) == run_files.MAX_ERROR_LINES and block[-1] == "  cause line 38"
    wide = "ERROR ~ " + "x" * 20_000 + "\n"
    _console(tmp_path, wide)
    kept = run_files.console_error(tmp_path, "R")
    assert kept.startswith("ERROR ~ xxx") and len(kept.encode()) < run_files.MAX_ERROR_BYTES


@pytest.mark.backing_independent
def test_a_console_without_an_error_gives_none(tmp_path):
    assert run_files.console_error(tmp_path, "R") is None  # no console at all
    launched = "N E X T F L O W  ~  version 24.10.4\n\nLaunching `x` [a_b] DSL2 - revision: 1\n\n"
    _console(tmp_path, launched)
    assert run_files.console_error(tmp_path, "R") is None
    _console(tmp_path, "")
    assert run_files.console_error(tmp_path, "R") is None


@pytest.mark.backing_independent
def test_only_the_tail_of_a_long_console_is_read(tmp_path):
    noise = "".join(f"line {number} of a loud pipeline\n" for number in range(200_000))
    _console(tmp_path, "ERROR ~ long ago\n" + noise + "\nERROR ~ the end\n")
    assert run_files.console_error(tmp_path, "R") == "ERROR ~ the end"
