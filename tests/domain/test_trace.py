"""The trace endpoints `nextflow run -with-tower` reports to, driven with the sample
payloads of a real run (tests/trace_samples/), retried and out of order as Nextflow may
send them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.conftest import WES, submit
from wes_gateway.domain import tokens
from wes_gateway.domain.models import Run, Task
from wes_gateway.domain.states import State
from workers import execution

SAMPLES = Path(__file__).resolve().parent.parent / "trace_samples"
API = "/api/trace"


def sample(name: str, run_id: str | None = None) -> dict:
    text = (SAMPLES / f"{name}.json").read_text()
    if run_id:
        text = text.replace("3V5QcabVRPtuSM", run_id)
    return json.loads(text)


def run_token(db, run_id: str, user: str = "alice") -> dict[str, str]:
    """The token a launched run's head job gets: good for that run only."""
    with db.session() as session:
        owner = tokens.ensure_user(session, user)
        _, token = tokens.create_token(session, owner, run_id=run_id)
    return {"Authorization": f"Bearer {token}"}


def _replay(client, headers, run_id: str) -> None:
    calls = [
        ("post", "/create", "01-create"),
        ("put", f"/{run_id}/begin", "02-begin"),
        ("put", f"/{run_id}/progress", "03-progress"),
        ("put", f"/{run_id}/progress", "03-progress"),  # a retried duplicate
        ("put", f"/{run_id}/heartbeat", "04-heartbeat"),
        ("put", f"/{run_id}/complete", "05-complete"),
        ("put", f"/{run_id}/heartbeat", "04-heartbeat"),  # late, out of order
    ]
    for method, path, name in calls:
        response = getattr(client, method)(
            f"{API}{path}?workspaceId=300", headers=headers, json=sample(name, run_id)
        )
        assert response.status_code == 200, (path, response.text)
        expected = sample(f"{name}.response", run_id)
        body = response.json()
        assert set(body) <= set(expected) | {"watchUrl"}, body
        assert {k: body[k] for k in ("status", "workflowId", "message") if k in expected} == {
            k: expected[k] for k in ("status", "workflowId", "message") if k in expected
        }


def test_replayed_run_fills_the_run_and_its_tasks(client, alice, db):
    run_id = submit(client, alice)
    _replay(client, run_token(db, run_id), run_id)
    with db.session() as session:
        run = session.get(Run, run_id)
        tasks = session.execute(select(Task).where(Task.run_id == run_id).order_by(Task.task_id))
        tasks = tasks.scalars().all()
    assert run.state is State.COMPLETE
    workflow = sample("05-complete", run_id)["workflow"]
    assert run.run_name == "prickly_brenner"
    assert run.session_id == workflow["sessionId"]
    assert run.project_name == "nextflow-io/hello"
    assert run.commit_id == workflow["commitId"] and run.revision == "master"
    assert run.command_line == workflow["commandLine"]
    assert run.work_dir == workflow["workDir"]
    assert run.stats == workflow["stats"]
    assert run.metrics == sample("05-complete", run_id)["metrics"]
    assert run.exit_status == 0
    assert run.end_time == datetime(2026, 5, 6, 12, 7, 2, 114263, tzinfo=UTC)
    records = sample("03-progress", run_id)["tasks"]
    assert [t.task_id for t in tasks] == [1, 2]
    assert tasks[0].status == "COMPLETED" and tasks[0].exit_status == 0
    assert tasks[0].data == records[0]
    assert tasks[1].exit_status is None  # exit 2147483647
    # Its end was never reported: the run's end ended it, as Nextflow marks tasks it stops.
    assert tasks[1].status == "ABORTED" and tasks[1].complete == run.end_time
    started = datetime.fromisoformat(records[1]["start"].replace("Z", "+00:00"))
    assert tasks[1].start == started
    # The same facts through WES.
    log = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    assert log["run_log"]["name"] == "prickly_brenner"
    listed = client.get(f"{WES}/runs/{run_id}/tasks", headers=alice).json()["task_logs"]
    assert [task["name"] for task in listed] == [records[0]["name"], records[1]["name"]]


def test_basic_auth_with_at_token_is_accepted(client, alice, db):
    run_id = submit(client, alice)
    token = run_token(db, run_id)["Authorization"].split()[1]
    basic = base64.b64encode(f"@token:{token}".encode()).decode()
    response = client.post(
        f"{API}/create",
        headers={"Authorization": f"Basic {basic}"},
        json=sample("01-create", run_id),
    )
    assert response.status_code == 200
    assert response.json()["workflowId"] == run_id
    wrong = base64.b64encode(f"someone:{token}".encode()).decode()
    assert (
        client.post(
            f"{API}/create",
            headers={"Authorization": f"Basic {wrong}"},
            json=sample("01-create", run_id),
        ).status_code
        == 401
    )


def test_unknown_launch_id_is_a_400(client, alice):
    response = client.post(f"{API}/create", headers=alice, json=sample("01-create"))
    assert response.status_code == 400
    assert response.json() == {"message": "Unknown workflow launch id=3V5QcabVRPtuSM"}


def test_a_run_started_elsewhere_is_monitoring_only(client, alice, bob, db):
    response = client.post(f"{API}/create", headers=alice, json=sample("01b-create-cli"))
    assert response.status_code == 200
    run_id = response.json()["workflowId"]
    assert len(run_id) == 14 and response.json()["watchUrl"].endswith(run_id)
    begin = client.put(f"{API}/{run_id}/begin", headers=alice, json=sample("02-begin", run_id))
    assert begin.status_code == 200 and begin.json()["watchUrl"]
    assert client.get(f"{WES}/runs/{run_id}/status", headers=alice).json()["state"] == "RUNNING"
    cancel = client.post(f"{WES}/runs/{run_id}/cancel", headers=alice)
    assert cancel.status_code == 400 and "only monitored" in cancel.json()["msg"]
    assert client.get(f"{WES}/runs/{run_id}", headers=bob).status_code == 404
    # The sweeper leaves it alone: no worker is to submit it.
    assert (
        execution.sweep(execution.Executor(db=db, settings=_fast_settings(db)), lambda _: None)
        == []
    )


def _fast_settings(db):
    from wes_gateway.infra.config import Settings

    return Settings(database_url=db.url, requeue_after=0, submit_stale_after=2, trace_timeout=1)


def test_a_run_token_reaches_its_run_only(client, alice, db):
    mine, other = submit(client, alice), submit(client, alice)
    headers = run_token(db, mine)
    response = client.put(f"{API}/{other}/begin", headers=headers, json=sample("02-begin", other))
    assert response.status_code == 404
    assert response.json() == {"message": f"run {other!r} not found"}
    created = client.post(f"{API}/create", headers=headers, json=sample("01b-create-cli"))
    assert created.status_code == 403
    assert "message" in created.json()


def test_too_many_tasks_in_one_call(client, alice, db):
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
    task = sample("03-progress", run_id)["tasks"][0]
    body = {"tasks": [{**task, "taskId": n} for n in range(101)], "progress": {}}
    response = client.put(f"{API}/{run_id}/progress", headers=headers, json=body)
    assert response.status_code == 400
    assert "too big" in response.json()["message"]
    body["tasks"] = body["tasks"][:100]
    assert client.put(f"{API}/{run_id}/progress", headers=headers, json=body).status_code == 200
    with db.session() as session:
        assert len(session.execute(select(Task.id).where(Task.run_id == run_id)).all()) == 100


def test_nulls_and_unknown_fields_are_tolerated(client, alice, db):
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
    begin = sample("02-begin", run_id)
    begin["workflow"] = {**{key: None for key in begin["workflow"]}, "brandNew": {"x": 1}}
    begin["somethingElse"] = [1, 2]
    assert client.put(f"{API}/{run_id}/begin", headers=headers, json=begin).status_code == 200
    progress = {
        "tasks": [{"taskId": 7, "status": None, "exit": None, "submit": None, "futureField": True}],
        "progress": None,
        "containers": None,
    }
    assert client.put(f"{API}/{run_id}/progress", headers=headers, json=progress).status_code == 200
    assert client.put(f"{API}/{run_id}/heartbeat", headers=headers, json={}).status_code == 200


def test_a_late_complete_after_cancel_changes_nothing(client, alice, db):
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
    client.put(f"{API}/{run_id}/begin", headers=headers, json=sample("02-begin", run_id))
    with db.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(state=State.CANCELED))
    complete = sample("05-complete", run_id)
    assert client.put(f"{API}/{run_id}/complete", headers=headers, json=complete).status_code == 200
    assert (
        client.put(
            f"{API}/{run_id}/heartbeat", headers=headers, json=sample("04-heartbeat", run_id)
        ).status_code
        == 200
    )
    assert client.get(f"{WES}/runs/{run_id}/status", headers=alice).json()["state"] == "CANCELED"


def test_complete_while_cancelling_ends_cancelled(client, alice, db):
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
    client.put(f"{API}/{run_id}/begin", headers=headers, json=sample("02-begin", run_id))
    assert client.post(f"{WES}/runs/{run_id}/cancel", headers=alice).status_code == 200
    complete = sample("05-complete", run_id)
    complete["workflow"]["success"] = False
    client.put(f"{API}/{run_id}/complete", headers=headers, json=complete)
    assert client.get(f"{WES}/runs/{run_id}/status", headers=alice).json()["state"] == "CANCELED"


@pytest.mark.parametrize("success,state", [(True, "COMPLETE"), (False, "EXECUTOR_ERROR")])
def test_complete_decides_the_end(client, alice, db, success, state):
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
    client.put(f"{API}/{run_id}/begin", headers=headers, json=sample("02-begin", run_id))
    complete = sample("05-complete", run_id)
    complete["workflow"].update(success=success, exitStatus=0 if success else 1)
    client.put(f"{API}/{run_id}/complete", headers=headers, json=complete)
    assert client.get(f"{WES}/runs/{run_id}/status", headers=alice).json()["state"] == state


def test_silent_traced_run_becomes_unknown_and_comes_back(client, alice, db):
    created = client.post(f"{API}/create", headers=alice, json=sample("01b-create-cli"))
    run_id = created.json()["workflowId"]
    client.put(f"{API}/{run_id}/begin", headers=alice, json=sample("02-begin", run_id))
    with db.session() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(last_seen_at=datetime.now(UTC) - timedelta(minutes=5))
        )
    execution.sweep(execution.Executor(db=db, settings=_fast_settings(db)), lambda _: None)
    assert client.get(f"{WES}/runs/{run_id}/status", headers=alice).json()["state"] == "UNKNOWN"
    client.put(f"{API}/{run_id}/heartbeat", headers=alice, json=sample("04-heartbeat", run_id))
    assert client.get(f"{WES}/runs/{run_id}/status", headers=alice).json()["state"] == "RUNNING"


def test_errors_under_api_are_message_bodies(client, alice):
    for response in (
        client.put(f"{API}/nope/begin", headers=alice, json={}),
        client.post(f"{API}/create", json={}),
        client.get("/api/nothing", headers=alice),
        client.post(
            f"{API}/create",
            headers=alice,
            content=b"{not json",
        ),
    ):
        assert response.status_code in (400, 401, 404, 415), response.text
        assert set(response.json()) == {"message"}, response.text
