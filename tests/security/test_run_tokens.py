"""The token a launched run's head job holds (TOWER_ACCESS_TOKEN): good for the trace
calls of its own run, for reading that run while it runs (what Nextflow's Tower client
may fetch), and for nothing else; harmless once its run has ended.

The trace calls of an ended run are still answered, as Nextflow retries ``complete`` and
must not fail on a late heartbeat, but they change nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from tests.conftest import WES, submit
from tests.domain.test_trace import run_token, sample
from tests.security.conftest import TRACE, Victim, start_traced_run
from tests.security.evidence import run_count, run_record
from tests.security.operations import all_operations
from tests.security.test_cross_user_matrix import DECISIONS, Kind, Targets, list_stream, send
from wes_gateway.domain.compute_envs import BUILTIN_ID
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import State
from wes_gateway.domain.transitions import transition

TRACE_OPERATIONS = [op for op in all_operations() if op.template.startswith("/trace/")]
OTHER_OPERATIONS = [
    op for op in all_operations() if not op.public and not op.template.startswith("/trace/")
]


def _ids(operation) -> str:
    return operation.operation_id


@pytest.mark.backing_independent
def test_the_trace_operations_are_found_in_the_spec():
    assert {op.operation_id for op in TRACE_OPERATIONS} == {
        "CreateTrace",
        "UpdateTraceBegin",
        "UpdateTraceProgress",
        "UpdateTraceHeartbeat",
        "UpdateTraceComplete",
    }


def test_a_run_token_reports_its_own_run(client, alice, db, victim: Victim):
    headers = victim.trace_headers
    progress = {"tasks": [{"taskId": 3, "status": "RUNNING", "name": "late (3)"}]}
    for path, body in [
        ("/create", sample("01-create", victim.run_id)),
        (f"/{victim.run_id}/progress", progress),
        (f"/{victim.run_id}/heartbeat", sample("04-heartbeat", victim.run_id)),
    ]:
        method = client.post if path == "/create" else client.put
        response = method(f"{TRACE}{path}", headers=headers, json=body)
        assert response.status_code == 200, (path, response.text)
    tasks = client.get(f"{WES}/runs/{victim.run_id}/tasks", headers=alice).json()["task_logs"]
    assert [task["id"] for task in tasks] == ["1", "2", "3"]
    complete = sample("05-complete", victim.run_id)
    response = client.put(f"{TRACE}/{victim.run_id}/complete", headers=headers, json=complete)
    assert response.status_code == 200
    assert client.get(f"{WES}/runs/{victim.run_id}/status", headers=alice).json() == {
        "run_id": victim.run_id,
        "state": "COMPLETE",
    }


@pytest.mark.parametrize("operation", TRACE_OPERATIONS, ids=_ids)
def test_a_run_token_cannot_report_another_run(
    operation, client, alice, db, run_dir, victim: Victim
):
    """Not even another run of the same user."""
    other = start_traced_run(client, alice, db, run_dir)
    before = run_record(db, other.run_id)
    targets = Targets(other.run_id, other.task_ids[0], BUILTIN_ID)
    response = send(client, operation, targets, victim.trace_headers)
    assert response.status_code in DECISIONS[operation.operation_id].refused, response.text
    assert set(response.json()) == {"message"}
    assert run_record(db, other.run_id) == before


def test_a_run_token_cannot_report_a_new_run(client, db, victim: Victim):
    count = run_count(db)
    response = client.post(
        f"{TRACE}/create", headers=victim.trace_headers, json=sample("01b-create-cli")
    )
    assert response.status_code == 403
    assert response.json() == {"message": "a run's own token can only report that run"}
    assert run_count(db) == count


@pytest.fixture
def admins_run(client, admin, db, run_dir) -> Victim:
    """A run of an administrator: its token must not carry the owner's powers."""
    return start_traced_run(client, admin, db, run_dir)


@pytest.mark.parametrize("operation", OTHER_OPERATIONS, ids=_ids)
def test_off_the_trace_endpoints_a_run_token_reads_its_run_and_nothing_else(
    operation, client, db, admin, victim: Victim, admins_run: Victim
):
    """An administrator's run token on every other operation: on its own run it may only
    read; another user's run does not exist for it; nothing an administrator may do is
    open to it."""
    decision = DECISIONS[operation.operation_id]
    headers = admins_run.trace_headers
    own = Targets(admins_run.run_id, admins_run.task_ids[0], BUILTIN_ID)
    others = Targets(victim.run_id, victim.task_ids[0], BUILTIN_ID)
    records = {run: run_record(db, run) for run in (admins_run.run_id, victim.run_id)}
    count = run_count(db)

    if decision.kind is Kind.RUN:
        response = send(client, operation, others, headers)
        # A change is refused before the run is even looked up.
        refused = decision.refused + ((400, 403) if operation.method != "get" else ())
        assert response.status_code in refused, response.text
        if operation.operation_id == "DeleteWorkflowMany":
            assert response.json() == {"failedWorkflowIds": [victim.run_id]}
        response = send(client, operation, own, headers)
        if operation.method == "get" or operation.operation_id.endswith("EventsTicket"):
            # A stream's ticket only reads, as the run's describe.
            assert response.status_code == 200, response.text
        else:  # cancel, delete: a head job's token changes nothing but through the trace
            assert response.status_code in (400, 403) or response.json() == {
                "failedWorkflowIds": [admins_run.run_id]
            }, response.text
    elif decision.kind is Kind.LIST:
        response = send(client, operation, own, headers)
        assert response.status_code == 200
        assert admins_run.run_id in response.text and victim.run_id not in response.text
        assert len(response.json()[decision.items]) == 1
    elif decision.kind is Kind.STREAM:
        response = list_stream(client, db, operation, own, headers)
        assert response.status_code == 200, response.text
        assert admins_run.run_id in response.text and victim.run_id not in response.text
    elif decision.kind is Kind.SELF:
        response = send(client, operation, own, headers)
        assert response.status_code == 200
        assert response.json()["user"]["admin"] is False
    elif decision.kind is Kind.SUBMIT:
        response = send(client, operation, own, headers)
        assert response.status_code == 400, response.text
        assert "run-scoped token" in response.text
    elif decision.kind is Kind.ADMIN:
        response = send(client, operation, own, headers)
        assert response.status_code == 403, response.text
        assert send(client, operation, own, admin).is_success  # the owner's own token may
    elif decision.kind is Kind.SHARED:
        response = send(client, operation, own, headers)
        assert response.status_code == 200  # compute environments are every user's to read
    elif decision.kind is Kind.TOKENS:
        response = send(client, operation, own, headers)
        assert response.status_code == 403, response.text
        assert response.json() == {"message": "a run's token cannot manage API tokens"}
    elif decision.kind is Kind.TENANCY:
        ids = Targets(
            admins_run.run_id, admins_run.task_ids[0], BUILTIN_ID, 1, 1, 1, 1, 1, team_id=1
        )
        response = send(client, operation, ids, headers)
        assert response.status_code == 403, response.text
        assert "run-scoped token" in response.text
    elif decision.kind is Kind.KEYS:
        response = send(client, operation, own, headers)
        assert response.status_code in (400, 403), response.text  # 400: a body refused first
        if response.status_code == 403:
            assert "run's own token" in response.text
    elif decision.kind is Kind.LAUNCHPAD:
        ids = Targets(
            admins_run.run_id, admins_run.task_ids[0], BUILTIN_ID, pipeline_id=1, label_id=1
        )
        response = send(client, operation, ids, headers)
        assert response.status_code == 403, response.text
        assert "run-scoped token" in response.text
    else:  # pragma: no cover - a new Kind needs its rule here
        pytest.fail(f"no rule for run tokens on {decision.kind}")

    assert {run: run_record(db, run) for run in records} == records
    assert run_count(db) == count


def _end(db, run_id: str, how: str) -> None:
    with db.session() as session:
        if how == "CANCELED":
            transition(session, run_id, State.CANCELING, "cancelled by alice")
        transition(session, run_id, State(how), f"ended {how}")


@pytest.mark.parametrize("how", ["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"])
def test_once_its_run_has_ended_a_run_token_changes_nothing(client, alice, db, victim: Victim, how):
    headers = victim.trace_headers
    if how == "COMPLETE":
        complete = sample("05-complete", victim.run_id)
        response = client.put(f"{TRACE}/{victim.run_id}/complete", headers=headers, json=complete)
        assert response.status_code == 200
    else:
        _end(db, victim.run_id, how)
    ended = run_record(db, victim.run_id)
    assert ended["run"]["state"] is State(how)

    # Off the trace endpoints it no longer authenticates at all.
    for path in (
        f"{WES}/runs/{victim.run_id}",
        f"{WES}/runs/{victim.run_id}/stdout",
        f"{WES}/runs",
        f"/api/workflow/{victim.run_id}",
        f"/api/workflow/{victim.run_id}/download",
        "/api/user-info",
        "/api/compute-envs",
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, (path, response.text)
    # The trace calls Nextflow may still send (retries, late ones) are answered, to no effect.
    hostile_task = {"taskId": 1, "status": "FAILED", "workdir": "/etc", "name": "rewritten"}
    begin = sample("02-begin", victim.run_id)
    begin["workflow"]["runName"] = "renamed"
    for method, path, body in [
        ("put", "complete", sample("05-complete", victim.run_id)),
        ("put", "complete", sample("05-complete", victim.run_id)),
        ("put", "progress", {"tasks": [hostile_task], "progress": {"running": 99}}),
        ("put", "heartbeat", sample("04-heartbeat", victim.run_id)),
        ("put", "begin", begin),
    ]:
        response = client.request(
            method.upper(), f"{TRACE}/{victim.run_id}/{path}", headers=headers, json=body
        )
        assert response.status_code == 200, (path, response.text)
    create = {**sample("01-create", victim.run_id), "runName": "renamed"}
    assert client.post(f"{TRACE}/create", headers=headers, json=create).status_code == 200
    assert run_record(db, victim.run_id) == ended
    # Its owner still sees the run, as it ended.
    status = client.get(f"{WES}/runs/{victim.run_id}/status", headers=alice).json()
    assert status["state"] == how


def test_a_run_token_of_a_deleted_run_is_gone_with_it(client, alice, db):
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
    with db.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(state=State.CANCELED))
    assert client.delete(f"/api/workflow/{run_id}", headers=alice).status_code == 204
    for response in (
        client.get(f"{WES}/runs", headers=headers),
        client.put(f"{TRACE}/{run_id}/heartbeat", headers=headers, json={}),
    ):
        assert response.status_code == 401, response.text
