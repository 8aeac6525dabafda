"""The by-id endpoints: run log, status, cancel, tasks, log text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import BY_ID_ENDPOINTS, WES, add_tasks, submit
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import State
from wes_gateway.domain.transitions import transition


def test_run_log_shape(client, alice):
    run_id = submit(client, alice, workflow_url="nf-core/rnaseq")
    body = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    base = f"http://testserver{WES}/runs/{run_id}"
    assert body["run_id"] == run_id
    assert body["state"] == "QUEUED"
    assert body["outputs"] == {}
    assert body["task_logs"] is None
    assert body["task_logs_url"] == f"{base}/tasks"
    assert body["run_log"]["stdout"] == f"{base}/stdout"
    assert body["run_log"]["stderr"] == f"{base}/stderr"
    assert body["request"]["workflow_url"] == "nf-core/rnaseq"


def test_log_urls_serve_text_with_the_same_token(client, alice, bob, run_dir):
    run_id = submit(client, alice)
    body = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    assert client.get(body["run_log"]["stdout"], headers=alice).text == ""
    (run_dir(run_id) / f"nf-{run_id}.txt").write_text("N E X T F L O W\nLaunching\n")
    (run_dir(run_id) / f"nf-{run_id}.log").write_text("WARN: something\n")
    response = client.get(body["run_log"]["stdout"], headers=alice)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "N E X T F L O W\nLaunching\n"
    assert client.get(body["run_log"]["stderr"], headers=alice).text == "WARN: something\n"
    assert client.get(body["run_log"]["stdout"]).status_code == 401
    assert client.get(body["run_log"]["stdout"], headers=bob).status_code == 404


def test_public_url_setting_shapes_links(app, client, alice, settings):
    run_id = submit(client, alice)
    settings.public_url = "https://wes.example.org/"
    try:
        body = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    finally:
        settings.public_url = None
    assert body["task_logs_url"] == f"https://wes.example.org{WES}/runs/{run_id}/tasks"


def test_finished_run_shows_times_and_exit_code(client, alice, db):
    run_id = submit(client, alice)
    start = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    end = datetime(2026, 3, 1, 10, 5, 7, tzinfo=UTC)
    with db.session() as session:
        transition(session, run_id, State.RUNNING, "began", at=start)
        transition(session, run_id, State.EXECUTOR_ERROR, "failed", at=end)
        run = session.get(Run, run_id)
        run.exit_status = 1
        run.error_message = "Process FOO failed\nexit 1"
        run.command = ["nextflow", "run", "nf-core/demo"]
    body = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    assert body["state"] == "EXECUTOR_ERROR"
    log = body["run_log"]
    assert log["start_time"] == "2026-03-01T10:00:00Z"
    assert log["end_time"] == "2026-03-01T10:05:07Z"
    assert log["exit_code"] == 1
    assert log["cmd"] == ["nextflow", "run", "nf-core/demo"]
    assert log["system_logs"] == ["Process FOO failed", "exit 1"]
    (item,) = client.get(f"{WES}/runs", headers=alice).json()["runs"]
    assert item["start_time"] == "2026-03-01T10:00:00Z"
    assert item["end_time"] == "2026-03-01T10:05:07Z"


def test_status(client, alice):
    run_id = submit(client, alice)
    response = client.get(f"{WES}/runs/{run_id}/status", headers=alice)
    assert response.json() == {"run_id": run_id, "state": "QUEUED"}


def test_cancel_queued_run_is_immediate_and_idempotent(client, alice):
    run_id = submit(client, alice)
    for _ in range(2):
        response = client.post(f"{WES}/runs/{run_id}/cancel", headers=alice)
        assert response.status_code == 200
        assert response.json() == {"run_id": run_id}
        assert client.get(f"{WES}/runs/{run_id}/status", headers=alice).json()["state"] == (
            "CANCELED"
        )


@pytest.mark.parametrize(
    "state,after",
    [
        (State.INITIALIZING, "CANCELING"),
        (State.RUNNING, "CANCELING"),
        (State.PAUSED, "CANCELING"),
        (State.UNKNOWN, "CANCELING"),
        (State.CANCELING, "CANCELING"),
        (State.COMPLETE, "COMPLETE"),
        (State.EXECUTOR_ERROR, "EXECUTOR_ERROR"),
        (State.SYSTEM_ERROR, "SYSTEM_ERROR"),
        (State.PREEMPTED, "PREEMPTED"),
        (State.CANCELED, "CANCELED"),
    ],
)
def test_cancel_from_each_state(client, alice, db, state, after):
    run_id = submit(client, alice)
    with db.session() as session:
        session.get(Run, run_id).state = state
    response = client.post(f"{WES}/runs/{run_id}/cancel", headers=alice)
    assert response.status_code == 200
    assert client.get(f"{WES}/runs/{run_id}/status", headers=alice).json()["state"] == after


def test_monitoring_only_run_cannot_be_cancelled(client, alice, db):
    run_id = submit(client, alice)
    with db.session() as session:
        session.get(Run, run_id).source = "trace"
        session.get(Run, run_id).state = State.RUNNING
    response = client.post(f"{WES}/runs/{run_id}/cancel", headers=alice)
    assert response.status_code == 400
    assert "only monitored" in response.json()["msg"]


def test_tasks_are_paged_in_order(client, alice, db):
    run_id = submit(client, alice)
    add_tasks(db, run_id, 23)
    seen = []
    token = ""
    while True:
        params = {"page_size": 5}
        if token:
            params["page_token"] = token
        response = client.get(f"{WES}/runs/{run_id}/tasks", headers=alice, params=params)
        assert response.status_code == 200
        body = response.json()
        seen.extend(task["id"] for task in body["task_logs"])
        token = body["next_page_token"]
        if not token:
            break
    assert seen == [str(number) for number in range(1, 24)]


def test_task_detail(client, alice, db):
    run_id = submit(client, alice)
    add_tasks(db, run_id, 3)
    body = client.get(f"{WES}/runs/{run_id}/tasks/2", headers=alice).json()
    assert body["id"] == "2"
    assert body["name"] == "ALIGN (2)"
    assert body["exit_code"] == 0
    assert body["cmd"] == ["echo 2"]
    assert body["start_time"] == "2026-01-01T00:00:02Z"
    for missing in ["4", "abc", "-1", "9" * 40]:
        response = client.get(f"{WES}/runs/{run_id}/tasks/{missing}", headers=alice)
        assert response.status_code == 404


def test_task_token_of_another_run_is_refused(client, alice, db):
    first, second = submit(client, alice), submit(client, alice)
    add_tasks(db, first, 3)
    add_tasks(db, second, 3)
    token = client.get(f"{WES}/runs/{first}/tasks", headers=alice, params={"page_size": 1}).json()[
        "next_page_token"
    ]
    response = client.get(f"{WES}/runs/{second}/tasks", headers=alice, params={"page_token": token})
    assert response.status_code == 400


@pytest.mark.parametrize("method,suffix", BY_ID_ENDPOINTS)
def test_unknown_run_is_404_everywhere(client, alice, method, suffix):
    response = getattr(client, method)(f"{WES}/runs/Nope0000000000{suffix}", headers=alice)
    assert response.status_code == 404
    assert "not found" in response.json()["msg"]
