"""POST /runs/{id}/resume (an extension): a new run resuming the old one's session, with
the old request unless the body overrides fields; 409 for a run that cannot be resumed."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from tests.conftest import WES, submit
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import State


def _ended(db, run_id: str, state: State = State.EXECUTOR_ERROR) -> None:
    with db.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(state=state))
        session.commit()


def _run(db, run_id: str) -> Run:
    with db.session() as session:
        run = session.get(Run, run_id)
        session.expunge(run)
        return run


def test_resume_makes_a_new_run_of_the_same_request_in_the_old_session(client, alice, db):
    old = submit(
        client,
        alice,
        tags=json.dumps({"project": "p1"}),
        workflow_engine="nextflow",
        workflow_engine_version="24.10.3",
        workflow_engine_parameters=json.dumps({"-r": "1.0.2", "-name": "first-try"}),
    )
    _ended(db, old)
    response = client.post(f"{WES}/runs/{old}/resume", headers=alice)
    assert response.status_code == 200, response.text
    new = response.json()["run_id"]
    assert new != old
    before, after = _run(db, old), _run(db, new)
    assert after.session_id == before.session_id
    assert after.cache_run_id == old  # it runs in the old run's session folder
    assert after.compute_env_id == before.compute_env_id
    assert after.run_name is None  # Nextflow refuses a name its history holds
    request = client.get(f"{WES}/runs/{new}", headers=alice).json()["request"]
    assert request["workflow_engine_parameters"]["resume"] == before.session_id
    assert request["workflow_engine_parameters"]["revision"] == "1.0.2"
    assert "run_name" not in request["workflow_engine_parameters"]
    assert request["workflow_engine_version"] == "24.10.3"
    assert request["tags"] == {"project": "p1"}
    assert request["workflow_params"] == {"input": "samples.csv"}


def test_the_body_overrides_fields(client, alice, db):
    old = submit(client, alice, workflow_engine_parameters=json.dumps({"revision": "1.0.2"}))
    _ended(db, old)
    response = client.post(
        f"{WES}/runs/{old}/resume",
        headers=alice,
        json={
            "workflow_params": {"input": "other.csv"},
            "workflow_engine_parameters": {"-r": "1.0.3", "-name": "second-try"},
        },
    )
    assert response.status_code == 200, response.text
    new = _run(db, response.json()["run_id"])
    assert new.params == {"input": "other.csv"}
    assert new.revision == "1.0.3" and new.run_name == "second-try"


@pytest.mark.parametrize("state", [State.QUEUED, State.RUNNING, State.CANCELING])
def test_an_active_run_is_a_409(client, alice, db, state):
    old = submit(client, alice)
    _ended(db, old, state)
    response = client.post(f"{WES}/runs/{old}/resume", headers=alice)
    assert response.status_code == 409
    assert response.json() == {
        "msg": f"run {old!r} is still {state.value}; it can be resumed once it has ended",
        "status_code": 409,
    }


def test_an_attached_script_is_a_409(client, alice, db):
    old = submit(
        client, alice, workflow_url="main.nf", files=[("workflow_attachment", ("main.nf", b"x"))]
    )
    _ended(db, old)
    response = client.post(f"{WES}/runs/{old}/resume", headers=alice)
    assert response.status_code == 409
    assert "attached script" in response.json()["msg"]


def test_someone_else_s_run_is_not_found_and_bad_bodies_are_named(client, alice, bob, db):
    old = submit(client, alice)
    _ended(db, old)
    assert client.post(f"{WES}/runs/{old}/resume", headers=bob).status_code == 404
    for body, named in (
        ({"surprise": 1}, "surprise"),
        ({"workflow_engine_parameters": {"-resume": "true"}}, "workflow_engine_parameters.-resume"),
        (
            {"workflow_engine_parameters": {"-with-docker": "x"}},
            "workflow_engine_parameters.-with-docker",
        ),
    ):
        response = client.post(f"{WES}/runs/{old}/resume", headers=alice, json=body)
        assert response.status_code == 400, response.text
        assert response.json()["msg"].startswith(f"{named}: ")
