"""POST /runs: multipart as the spec says, JSON as an extension, and every refusal a 400
that names the part at fault."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from tests.conftest import WES, submit
from wes_gateway.domain.models import Run, RunStateChange
from wes_gateway.domain.states import State


def ended(db, run_id: str, state: State = State.EXECUTOR_ERROR) -> str:
    with db.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(state=state))
        session.commit()
    return run_id


def test_multipart_run_is_committed_queued(client, alice, db):
    run_id = submit(
        client,
        alice,
        workflow_url="https://github.com/nf-core/rnaseq",
        tags=json.dumps({"project": "p1", "batch": "7"}),
        workflow_engine="nextflow",
        workflow_engine_version="24.10.4",
        workflow_engine_parameters=json.dumps(
            {"revision": "3.14.0", "profile": "test,docker", "resume": "false", "latest": True}
        ),
    )
    assert len(run_id) == 14 and run_id.isalnum()
    with db.session() as session:
        run = session.get(Run, run_id)
        history = session.execute(
            select(RunStateChange.from_state, RunStateChange.to_state).where(
                RunStateChange.run_id == run_id
            )
        ).all()
    assert run.state.value == "QUEUED"
    assert run.pipeline == "https://github.com/nf-core/rnaseq"
    assert run.revision == "3.14.0" and run.profile == "test,docker"
    assert run.params == {"input": "samples.csv"}
    assert history == [(None, run.state)]

    log = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    assert log["request"] == {
        "workflow_params": {"input": "samples.csv"},
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "tags": {"project": "p1", "batch": "7"},
        "workflow_engine_parameters": {
            "revision": "3.14.0",
            "profile": "test,docker",
            "resume": "false",
            "latest": "true",
        },
        "workflow_engine": "nextflow",
        "workflow_engine_version": "24.10.4",
        "workflow_url": "https://github.com/nf-core/rnaseq",
    }


def test_attachments_are_staged_with_sub_paths(client, alice, run_dir):
    files = [
        ("workflow_attachment", ("main.nf", b"workflow { println 'hi' }\n")),
        ("workflow_attachment", ("modules/local/align.nf", b"process ALIGN {}\n")),
        ("workflow_attachment", ("./data/./samples.csv", b"a,b\n")),
    ]
    run_id = submit(client, alice, workflow_url="main.nf", files=files)
    root = run_dir(run_id) / "launch"
    assert (root / "main.nf").read_bytes() == b"workflow { println 'hi' }\n"
    assert (root / "modules/local/align.nf").read_bytes() == b"process ALIGN {}\n"
    assert (root / "data/samples.csv").read_bytes() == b"a,b\n"
    assert (
        client.get(f"{WES}/runs/{run_id}", headers=alice).json()["request"]["workflow_url"]
        == "main.nf"
    )


def test_json_body_is_accepted(client, alice):
    response = client.post(
        f"{WES}/runs",
        headers=alice,
        json={
            "workflow_type": "NEXTFLOW",
            "workflow_type_version": "dsl2",
            "workflow_url": "nf-core/demo",
            "workflow_params": {"x": [1, 2]},
            "tags": {"a": "b"},
        },
    )
    assert response.status_code == 200, response.text
    run = client.get(f"{WES}/runs/{response.json()['run_id']}", headers=alice).json()
    assert run["request"]["workflow_type"] == "NFL"
    assert run["request"]["workflow_params"] == {"x": [1, 2]}


def test_url_encoded_form_is_accepted(client, alice):
    response = client.post(
        f"{WES}/runs",
        headers=alice,
        data={
            "workflow_type": "NFL",
            "workflow_type_version": "DSL2",
            "workflow_url": "nf-core/demo",
        },
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "overrides,named",
    [
        ({"workflow_params": "{not json"}, "workflow_params"),
        ({"workflow_params": "[1, 2]"}, "workflow_params"),
        ({"tags": "nope"}, "tags"),
        ({"tags": '{"a": {"nested": 1}}'}, "tags.a"),
        ({"workflow_engine_parameters": "{"}, "workflow_engine_parameters"),
        ({"workflow_engine_parameters": '{"bogus": "1"}'}, "workflow_engine_parameters.bogus"),
        (
            {"workflow_engine_parameters": '{"revision": "x; rm -rf /"}'},
            "workflow_engine_parameters.revision",
        ),
        (
            {"workflow_engine_parameters": '{"profile": "a b"}'},
            "workflow_engine_parameters.profile",
        ),
        ({"workflow_engine_parameters": '{"entry": "1bad"}'}, "workflow_engine_parameters.entry"),
        (
            {"workflow_engine_parameters": '{"resume": "maybe"}'},
            "workflow_engine_parameters.resume",
        ),
        ({"workflow_engine_parameters": '{"latest": "sure"}'}, "workflow_engine_parameters.latest"),
        (
            {"workflow_engine_parameters": '{"main_script": "../../etc/x.nf"}'},
            "workflow_engine_parameters.main_script",
        ),
        (
            {"workflow_engine_parameters": '{"compute_env_id": "nope"}'},
            "workflow_engine_parameters.compute_env_id",
        ),
        ({"workflow_type": "CWL"}, "workflow_type"),
        ({"workflow_type": ""}, "workflow_type"),
        ({"workflow_type_version": "DSL1"}, "workflow_type_version"),
        ({"workflow_type_version": ""}, "workflow_type_version"),
        ({"workflow_url": ""}, "workflow_url"),
        ({"workflow_url": "http://example.org/repo"}, "workflow_url"),
        ({"workflow_url": "file:///etc/passwd"}, "workflow_url"),
        ({"workflow_url": "/etc/passwd"}, "workflow_url"),
        ({"workflow_url": "missing.nf"}, "workflow_url"),
        ({"workflow_engine": "cromwell"}, "workflow_engine"),
        ({"workflow_engine_version": "24.10.4"}, "workflow_engine"),
        (
            {"workflow_engine": "nextflow", "workflow_engine_version": "0.1"},
            "workflow_engine_version",
        ),
        ({"surprise": "x"}, "surprise"),
    ],
)
def test_bad_parts_are_named(client, alice, db, overrides, named):
    fields = {
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "workflow_url": "nf-core/demo",
    }
    fields.update(overrides)
    response = client.post(
        f"{WES}/runs",
        headers=alice,
        data=fields,
        files=[("workflow_attachment", ("main.nf", b"x"))],
    )
    assert response.status_code == 400, response.text
    assert response.json()["msg"].startswith(f"{named}:"), response.json()
    with db.session() as session:
        assert session.execute(select(Run)).first() is None


def test_repeated_single_part_is_refused(client, alice):
    body = [
        ("workflow_type", "NFL"),
        ("workflow_type", "NFL"),
        ("workflow_type_version", "DSL2"),
        ("workflow_url", "nf-core/demo"),
    ]
    response = client.post(
        f"{WES}/runs",
        headers={**alice, "Content-Type": "multipart/form-data; boundary=XyZ"},
        content=_multipart(body, "XyZ"),
    )
    assert response.status_code == 400
    assert response.json()["msg"].startswith("workflow_type:")


def test_unsupported_content_type_is_a_400(client, alice):
    response = client.post(
        f"{WES}/runs", headers={**alice, "Content-Type": "text/plain"}, content=b"hello"
    )
    assert response.status_code == 400


def test_body_over_the_limit_is_413(client, alice, settings, db):
    big = b"x" * (settings.max_request_bytes + 1)
    response = client.post(
        f"{WES}/runs",
        headers=alice,
        data={"workflow_type": "NFL", "workflow_type_version": "DSL2", "workflow_url": "a.nf"},
        files=[("workflow_attachment", ("a.nf", big))],
    )
    assert response.status_code == 413
    with db.session() as session:
        assert session.execute(select(Run)).first() is None


def test_chunked_body_over_the_limit_is_413(client, alice, settings):
    def chunks():
        yield (
            b'--abc\r\nContent-Disposition: form-data; name="workflow_attachment"; '
            b'filename="big.bin"\r\n\r\n'
        )
        part = b"y" * (1024 * 1024)
        for _ in range(settings.max_request_mb + 2):
            yield part
        yield b"\r\n--abc--\r\n"

    response = client.post(
        f"{WES}/runs",
        headers={**alice, "Content-Type": "multipart/form-data; boundary=abc"},
        content=chunks(),
    )
    assert response.status_code == 413


def test_form_part_over_the_limit_is_413(client, alice, settings):
    response = client.post(
        f"{WES}/runs",
        headers=alice,
        data={
            "workflow_type": "NFL",
            "workflow_type_version": "DSL2",
            "workflow_url": "nf-core/demo",
            "workflow_params": '{"a": "' + "z" * (settings.max_field_bytes + 10) + '"}',
        },
        files=[("workflow_attachment", ("a.nf", b"x"))],
    )
    assert response.status_code == 413


def _multipart(parts: list[tuple[str, str]], boundary: str) -> bytes:
    out = b""
    for name, value in parts:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    return out + f"--{boundary}--\r\n".encode()


def test_chunked_multipart_submission_is_read(client, alice):
    body = _multipart(
        [
            ("workflow_type", "NFL"),
            ("workflow_type_version", "DSL2"),
            ("workflow_url", "nf-core/demo"),
            ("workflow_params", '{"k": "v"}'),
        ],
        "b0und",
    )

    def chunks():
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    response = client.post(
        f"{WES}/runs",
        headers={**alice, "Content-Type": "multipart/form-data; boundary=b0und"},
        content=chunks(),
    )
    assert response.status_code == 200, response.text
    run = client.get(f"{WES}/runs/{response.json()['run_id']}", headers=alice).json()
    assert run["request"]["workflow_params"] == {"k": "v"}


SESSION = "5f1c3a52-8c1e-4f0e-9d7a-2b3c4d5e6f70"


@pytest.mark.parametrize(
    ("option", "sent", "stored"),
    [
        ("latest", True, "true"),
        ("latest", False, "false"),
        ("latest", "true", "true"),
        ("latest", "false", "false"),
        ("resume", True, "true"),
        ("resume", "false", "false"),
        ("resume", SESSION, SESSION),
        ("resume", SESSION.upper(), SESSION),
    ],
)
def test_switches_take_booleans(client, alice, db, option, sent, stored):
    if option == "resume":  # an ended run of the session to resume
        ended(db, submit(client, alice, workflow_engine_parameters=json.dumps(
            {"session_id": SESSION})))  # fmt: skip
    run_id = submit(client, alice, workflow_engine_parameters=json.dumps({option: sent}))
    request = client.get(f"{WES}/runs/{run_id}", headers=alice).json()["request"]
    assert request["workflow_engine_parameters"] == {option: stored}


@pytest.mark.parametrize("option", ["latest", "resume"])
@pytest.mark.parametrize(
    "sent", ["yes", "no", "1", "0", 1, 0, "", "maybe", "TRUE", " true", None, "{" + SESSION + "}"]
)
def test_anything_else_is_not_a_switch(client, alice, db, option, sent):
    """Not "yes", not 1, not an empty string: a 400 naming the option, and no run."""
    response = client.post(
        f"{WES}/runs",
        headers=alice,
        data={
            "workflow_type": "NFL",
            "workflow_type_version": "DSL2",
            "workflow_url": "nf-core/demo",
            "workflow_engine_parameters": json.dumps({option: sent}),
        },
    )
    assert response.status_code == 400, response.text
    assert response.json()["msg"].startswith(f"workflow_engine_parameters.{option}: must be")
    with db.session() as session:
        assert session.execute(select(Run)).first() is None


def _launch_options(client, headers, **options):
    return client.post(
        f"{WES}/runs",
        headers=headers,
        data={
            "workflow_type": "NFL",
            "workflow_type_version": "DSL2",
            "workflow_url": "nf-core/demo",
            "workflow_engine_parameters": json.dumps(options),
        },
    )


def test_a_revision_with_an_attached_script_is_refused(client, alice):
    """Nextflow: "Revision option cannot be used when running a local script"."""
    response = client.post(
        f"{WES}/runs",
        headers=alice,
        data={
            "workflow_type": "NFL",
            "workflow_type_version": "DSL2",
            "workflow_url": "main.nf",
            "workflow_engine_parameters": json.dumps({"revision": "main"}),
        },
        files=[("workflow_attachment", ("main.nf", b"workflow {}"))],
    )
    assert response.status_code == 400
    assert response.json()["msg"].startswith("workflow_engine_parameters.revision:")
    assert client.get(f"{WES}/runs", headers=alice).json()["runs"] == []


def test_a_resume_resolves_the_callers_session_at_accept(client, alice, bob, db):
    first = ended(db, submit(client, alice))
    session_id = client.get(f"/api/workflow/{first}", headers=alice).json()["workflow"]["sessionId"]
    assert session_id  # every run has its Nextflow session from the start
    resumed = _launch_options(client, alice, resume=session_id)
    assert resumed.status_code == 200, resumed.text
    second = resumed.json()["run_id"]
    described = client.get(f"/api/workflow/{second}", headers=alice).json()["workflow"]
    assert described["sessionId"] == session_id
    with db.session() as session:
        assert session.get(Run, second).cache_run_id == first
    # Resumed again: still in the folder of the run that began the session; while that
    # resume is active, the session is in use.
    busy = _launch_options(client, alice, resume=session_id)
    assert busy.status_code == 400 and "in use" in busy.json()["msg"]
    ended(db, second, State.COMPLETE)
    third = _launch_options(client, alice, resume=session_id).json()["run_id"]
    with db.session() as session:
        assert session.get(Run, third).cache_run_id == first
    # Another user's session, or one nobody ran, is not found.
    assert _launch_options(client, bob, resume=session_id).status_code == 404
    unknown = _launch_options(client, alice, resume="0f1c3a52-8c1e-4f0e-9d7a-2b3c4d5e6f70")
    assert unknown.status_code == 404
    assert unknown.json()["msg"].startswith("workflow_engine_parameters.resume:")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"head_job_cpus": 2}, "head_job_cpus"),
        ({"head_job_memory_mb": 4000}, "head_job_memory_mb"),
        ({"work_dir": "/tmp/elsewhere"}, "work_dir"),
        ({"resume": "true"}, "resume"),
        ({"session_id": "not-a-uuid"}, "session_id"),
        ({"stub_run": "yes"}, "stub_run"),
    ],
)
def test_local_launch_settings_it_cannot_honour_are_refused(client, alice, options, field):
    response = _launch_options(client, alice, **options)
    assert response.status_code == 400, response.text
    assert response.json()["msg"].startswith(f"workflow_engine_parameters.{field}:")
    assert client.get(f"{WES}/runs", headers=alice).json()["runs"] == []
