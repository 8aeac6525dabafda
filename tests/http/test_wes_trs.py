"""A workflow_url naming a GA4GH TRS tool version (a trs:// URI, or a Dockstore
#workflow/ id) runs the git repository and revision the registry gives for it; a
registry not allowed, a version it does not have, a workflow not in Nextflow and a
registry that does not answer are refused plainly, naming the field. A local TRS
registry (tests/trs_server.py) answers in the shapes of the TRS spec."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from jsonschema import Draft7Validator
from sqlalchemy import update

from tests import trs_server
from tests.conftest import WES, submit
from tests.oracle import seqera
from tests.trs_server import RNASEQ, ToolVersion
from wes_gateway.domain import launch, trs
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import State
from wes_gateway.infra.config import Settings
from workers.execution import snapshot

RNASEQ_GIT = "https://github.com/nf-core/rnaseq"
OUR_SPEC = Path(__file__).resolve().parents[2] / "specs" / "wes.openapi.yaml"


def _documented_additions() -> dict:
    """The RunLog additions our spec documents (GetRunLog's 200, marked as ours)."""
    spec = yaml.safe_load(OUR_SPEC.read_text())
    return spec["paths"]["/runs/{run_id}"]["get"]["responses"]["200"]["x-wes-gateway-extension"]


@pytest.fixture
def registry():
    with trs_server.serve(slow_seconds=4) as registry:
        yield registry


def _allow(app, monkeypatch, tmp_path: Path, hosts: str, **settings) -> trs.Resolver:
    """The service's TRS settings for this test: ``hosts`` as WES_GATEWAY_TRS_HOSTS."""
    values = {"trs_timeout": 1.0, **settings}
    resolver = trs.Resolver.from_settings(
        Settings(data_dir=tmp_path / "trs-settings", trs_hosts=hosts, **values)
    )
    monkeypatch.setattr(app.app.extensions["wes_gateway"], "trs", resolver)
    return resolver


@pytest.fixture
def allowed(app, monkeypatch, tmp_path, registry):
    """The local registry is the one allowed (so also the one Dockstore ids go to)."""
    return _allow(app, monkeypatch, tmp_path, registry.base_url)


def _post(client, headers, workflow_url: str, **fields):
    data = {
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "workflow_url": workflow_url,
        **fields,
    }
    return client.post(f"{WES}/runs", headers=headers, data=data)


def _head_job_argv(db, settings, run_id: str) -> list[str]:
    """The argv the workers give the run's head job (the same function they call)."""
    with db.session() as session:
        run = session.get(Run, run_id)
        snap = snapshot(run, settings.run_dir(run_id))
    return launch.build_command(snap)


def test_a_trs_uri_runs_the_repository_and_revision_the_registry_gives(
    client, alice, db, settings, registry, allowed
):
    uri = registry.uri(RNASEQ, "3.14.0")
    assert uri.endswith("/%23workflow%2Fgithub.com%2Fnf-core%2Frnaseq/3.14.0")
    run_id = submit(client, alice, workflow_url=uri)

    log = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    assert log["request"]["workflow_url"] == uri  # as the client sent it
    assert log["resolved_workflow"] == {
        "trs_uri": uri,
        "trs_tool_version_url": f"{registry.base_url}/tools/%23workflow%2Fgithub.com%2Fnf-core"
        "%2Frnaseq/versions/3.14.0",
        "tool_id": RNASEQ,
        "version": "3.14.0",
        "descriptor_type": "NFL",
        "url": RNASEQ_GIT,
        "revision": "3.14.0",
    }
    additions = {key: log[key] for key in ("resolved_workflow", "workspace_id") if key in log}
    Draft7Validator(_documented_additions()).validate(additions)
    argv = _head_job_argv(db, settings, run_id)
    assert argv[argv.index("run") + 1 :][:3] == [RNASEQ_GIT, "-r", "3.14.0"]
    assert "-main-script" not in argv  # Dockstore's primary NFL descriptor: nextflow.config


def test_a_dockstore_id_resolves_through_the_first_registry(
    client, alice, db, settings, registry, allowed
):
    run_id = submit(client, alice, workflow_url=f"{RNASEQ}:3.14.0")
    log = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    assert log["request"]["workflow_url"] == f"{RNASEQ}:3.14.0"
    assert log["resolved_workflow"]["url"] == RNASEQ_GIT
    assert log["resolved_workflow"]["revision"] == "3.14.0"

    # Without a version in the id, the launch's revision names it.
    other = submit(
        client,
        alice,
        workflow_url=RNASEQ,
        workflow_engine_parameters=json.dumps({"revision": "3.14.0"}),
    )
    argv = _head_job_argv(db, settings, other)
    assert argv[argv.index("run") + 1 :][:3] == [RNASEQ_GIT, "-r", "3.14.0"]

    response = _post(client, alice, RNASEQ)
    assert response.status_code == 400
    assert response.json()["msg"].startswith("workflow_url: a Dockstore workflow id needs")
    response = _post(
        client,
        alice,
        f"{RNASEQ}:3.14.0",
        workflow_engine_parameters=json.dumps({"revision": "3.13.0"}),
    )
    assert response.status_code == 400
    assert response.json()["msg"].startswith("workflow_engine_parameters.revision: differs")


def test_the_longer_forms_clients_write_resolve_alike(
    client, alice, db, settings, registry, allowed
):
    tool = quote(RNASEQ, safe="")
    for url in (
        f"trs://{registry.host}/ga4gh/trs/v2/{tool}/3.14.0/NFL",  # WESkit's
        f"{registry.base_url}/tools/{tool}/versions/3.14.0",  # the registry's own URL
        f"{registry.base_url}/tools/{tool}/versions/3.14.0/PLAIN_NFL/descriptor",
    ):
        run_id = submit(client, alice, workflow_url=url)
        log = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
        assert log["request"]["workflow_url"] == url
        argv = _head_job_argv(db, settings, run_id)
        assert argv[argv.index("run") + 1 :][:3] == [RNASEQ_GIT, "-r", "3.14.0"], url
    response = _post(client, alice, f"trs://{registry.host}/ga4gh/trs/v2/{tool}/3.14.0/CWL")
    assert response.status_code == 400
    assert response.json()["msg"] == (
        "workflow_url: names a CWL descriptor; this service runs Nextflow (NFL)"
    )


def test_a_registry_not_allowed_is_refused_without_asking_it(
    client, alice, app, monkeypatch, tmp_path, registry
):
    _allow(app, monkeypatch, tmp_path, "dockstore.org")
    response = _post(client, alice, registry.uri(RNASEQ, "3.14.0"))
    assert response.status_code == 400
    message = response.json()["msg"]
    assert message.startswith(f"workflow_url: TRS host '{registry.host}' is not one")
    assert "dockstore.org" in message
    assert registry.requests == []


def test_a_version_the_registry_does_not_have_is_a_400(client, alice, registry, allowed):
    response = _post(client, alice, registry.uri(RNASEQ, "9.9.9"))
    assert response.status_code == 400
    assert response.json()["msg"] == (
        f"workflow_url: {registry.host} has no TRS tool '{RNASEQ}' version '9.9.9'"
    )
    response = _post(client, alice, registry.uri("#workflow/github.com/no/such", "1.0"))
    assert response.status_code == 400
    assert "has no TRS tool" in response.json()["msg"]


def test_a_workflow_in_another_language_is_a_400(client, alice, registry, allowed):
    response = _post(
        client, alice, registry.uri("#workflow/github.com/dockstore/hello_world", "master")
    )
    assert response.status_code == 400
    message = response.json()["msg"]
    assert message.startswith("workflow_url: ") and "of type CWL" in message
    assert "Nextflow (NFL) only" in message


def test_a_registry_that_does_not_answer_is_a_503_naming_it(
    client, alice, app, monkeypatch, tmp_path, registry
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    _allow(app, monkeypatch, tmp_path, f"http://{closed}/ga4gh/trs/v2, {registry.base_url}")
    response = _post(client, alice, f"trs://{closed}/{quote(RNASEQ, safe='')}/3.14.0")
    assert response.status_code == 503
    assert response.json()["msg"].startswith(
        f"workflow_url: the TRS registry {closed} could not be reached (connection refused)"
    )

    # One that accepts and then says nothing: the answer is awaited no longer than the
    # timeout (1 s here), never as long as the registry would take (4 s).
    started = time.monotonic()
    response = _post(client, alice, registry.uri("slow", "1.0"))
    assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert response.json()["msg"] == (
        f"workflow_url: the TRS registry {registry.host} could not be reached (no answer "
        "within 1 s); try again later"
    )

    # One that keeps sending, slowly: the timeout holds for the whole answer.
    started = time.monotonic()
    response = _post(client, alice, registry.uri("drip", "1.0"))
    assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert "(no answer within 1 s)" in response.json()["msg"]

    # An answer larger than any TRS answer is not read, let alone parsed.
    response = _post(client, alice, registry.uri("huge", "1.0"))
    assert response.status_code == 503
    assert "its answer is over 1024 KiB" in response.json()["msg"]


def test_a_resolution_is_reused_until_its_time_is_up(
    client, alice, app, monkeypatch, tmp_path, registry
):
    _allow(app, monkeypatch, tmp_path, registry.base_url)
    uri = registry.uri(RNASEQ, "3.14.0")
    submit(client, alice, workflow_url=uri)
    asked = list(registry.requests)
    assert asked == [f"{RNASEQ}/3.14.0", f"{RNASEQ}/3.14.0/NFL/files"]
    second = submit(client, alice, workflow_url=f"{RNASEQ}:3.14.0")  # the same version
    assert registry.requests == asked
    log = client.get(f"{WES}/runs/{second}", headers=alice).json()
    assert log["resolved_workflow"]["trs_uri"] == f"{RNASEQ}:3.14.0"

    # With no time to keep answers, each submission asks again.
    _allow(app, monkeypatch, tmp_path, registry.base_url, trs_cache_ttl=0)
    submit(client, alice, workflow_url=uri)
    submit(client, alice, workflow_url=uri)
    assert len(registry.requests) == len(asked) * 3

    # An answer kept for a second is asked for again once the second is over.
    _allow(app, monkeypatch, tmp_path, registry.base_url, trs_cache_ttl=1)
    submit(client, alice, workflow_url=uri)
    submit(client, alice, workflow_url=uri)
    assert len(registry.requests) == len(asked) * 4
    time.sleep(1.1)
    submit(client, alice, workflow_url=uri)
    assert len(registry.requests) == len(asked) * 5


def test_another_registry_gives_its_repository_through_the_descriptor_url(
    client, alice, db, settings, app, monkeypatch, tmp_path
):
    tools = {
        "12345": {
            "v2": ToolVersion(
                "v2",
                files=[
                    ("workflows/align.nf", "PRIMARY_DESCRIPTOR"),
                    ("nextflow.config", "SECONDARY_DESCRIPTOR"),
                ],
                descriptor_url="https://raw.githubusercontent.com/acme/pipes/a1b2c3d/workflows/align.nf",
            ),
            "bad": ToolVersion("bad", descriptor_url="https://example.org/align.nf"),
            "hostile": ToolVersion(
                "hostile",
                descriptor_url="https://raw.githubusercontent.com/acme/pipes/-resume/main.nf",
            ),
        }
    }
    with trs_server.serve(tools) as registry:
        _allow(app, monkeypatch, tmp_path, registry.base_url)
        run_id = submit(client, alice, workflow_url=registry.uri("12345", "v2"))
        resolved = client.get(f"{WES}/runs/{run_id}", headers=alice).json()["resolved_workflow"]
        Draft7Validator(_documented_additions()).validate({"resolved_workflow": resolved})
        assert (resolved["url"], resolved["revision"], resolved["main_script"]) == (
            "https://github.com/acme/pipes",
            "a1b2c3d",
            "workflows/align.nf",
        )
        argv = _head_job_argv(db, settings, run_id)
        assert argv[argv.index("run") + 1 :][:3] == [
            "https://github.com/acme/pipes",
            "-r",
            "a1b2c3d",
        ]
        assert argv[argv.index("-main-script") + 1] == "workflows/align.nf"

        # Its Tower launch is what ran, so a relaunch runs the same code.
        launch_record = client.get(f"/api/workflow/{run_id}/launch", headers=alice).json()
        seqera.validate("GET", f"/api/workflow/{run_id}/launch", 200, launch_record)
        record = launch_record["launch"]
        assert (record["pipeline"], record["revision"], record["mainScript"]) == (
            "https://github.com/acme/pipes",
            "a1b2c3d",
            "workflows/align.nf",
        )

        response = _post(client, alice, registry.uri("12345", "bad"))
        assert response.status_code == 400
        assert "gives no git repository" in response.json()["msg"]
        # What a registry answers is held to what a client may send.
        response = _post(client, alice, registry.uri("12345", "hostile"))
        assert response.status_code == 400
        assert response.json()["msg"].startswith("workflow_url: trs://")
        assert "revision '-resume', not a git revision name" in response.json()["msg"]


@pytest.mark.parametrize(
    "url",
    [
        "trs://dockstore.org/%23workflow%2Fgithub.com%2Fa%2Fb",  # no version
        "trs://dockstore.org/a/b/c",
        "trs://dock store.org/a/1",
        "trs://dockstore.org/a%20b/1",
        "#workflow/github.com/only-owner:1.0",
        "#workflow/github.com/a/b:1 0",
    ],
)
def test_a_malformed_trs_workflow_is_a_400(client, alice, url, allowed, registry):
    response = _post(client, alice, url)
    assert response.status_code == 400
    assert response.json()["msg"].startswith("workflow_url: ")
    assert registry.requests == []


def test_a_tower_launch_takes_a_trs_pipeline(client, alice, db, settings, registry, allowed):
    response = client.post(
        "/api/workflow/launch",
        headers=alice,
        json={"launch": {"pipeline": registry.uri(RNASEQ, "3.14.0")}},
    )
    seqera.check(response)
    assert response.status_code == 200, response.text
    argv = _head_job_argv(db, settings, response.json()["workflowId"])
    assert argv[argv.index("run") + 1 :][:3] == [RNASEQ_GIT, "-r", "3.14.0"]

    response = client.post(
        "/api/workflow/launch",
        headers=alice,
        json={"launch": {"pipeline": registry.uri(RNASEQ, "0.0.1")}},
    )
    assert response.status_code == 400
    assert set(response.json()) == {"message"}  # Seqera's ErrorResponse
    assert response.json()["message"].startswith("launch.pipeline: ")


def test_service_info_names_the_registries(client, registry, allowed):
    body = client.get(f"{WES}/service-info").json()
    assert body["tags"]["trs_hosts"] == registry.host


def test_a_trs_run_resumes_as_it_ran(client, alice, db, settings, registry, allowed):
    old = submit(client, alice, workflow_url=registry.uri(RNASEQ, "3.14.0"))
    with db.session() as session:
        session.execute(update(Run).where(Run.id == old).values(state=State.EXECUTOR_ERROR))
        session.commit()
    response = client.post(f"{WES}/runs/{old}/resume", headers=alice)
    assert response.status_code == 200, response.text
    new = response.json()["run_id"]
    log = client.get(f"{WES}/runs/{new}", headers=alice).json()
    assert log["request"]["workflow_url"] == registry.uri(RNASEQ, "3.14.0")
    assert log["resolved_workflow"]["url"] == RNASEQ_GIT
    argv = _head_job_argv(db, settings, new)
    assert argv[argv.index("run") + 1 :][:3] == [RNASEQ_GIT, "-r", "3.14.0"]
    assert "-resume" in argv
