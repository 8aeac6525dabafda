"""A TRS workflow on a live gateway: the registry (tests/trs_server.py) is the one the
operator allows by WES_GATEWAY_TRS_HOSTS, and the head job (the Nextflow stand-in) runs
the git repository, revision and script it resolved to; every WES answer is checked
against the official spec."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests import trs_server
from tests.live import TERMINAL, admin_token, execution_env, serve, spec_checked_client
from tests.trs_server import RNASEQ, ToolVersion

pytestmark = [pytest.mark.slow, pytest.mark.backing_independent]  # its gateway: embedded

WES = "/ga4gh/wes/v1"
ALIGN = "#workflow/github.com/acme/pipes/align"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tools = {
        **trs_server.dockstore_tools(),
        ALIGN: {
            "v2": ToolVersion(
                "v2",
                files=[
                    ("/workflows/align.nf", "PRIMARY_DESCRIPTOR"),
                    ("/nextflow.config", "SECONDARY_DESCRIPTOR"),
                ],
            )
        },
    }
    with trs_server.serve(tools) as registry:
        data = tmp_path_factory.mktemp("trs") / "data"
        env = execution_env(data, WES_GATEWAY_TRS_HOSTS=registry.base_url)
        with serve(env, kill_at_end=True) as (base, process):
            token = admin_token(process)
            with spec_checked_client(base, token) as client:
                yield client, registry


def _ended(client: httpx.Client, run_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        log = client.get(f"{WES}/runs/{run_id}").json()
        if log["state"] in TERMINAL:
            return log
        assert time.monotonic() < deadline, log["state"]
        time.sleep(0.2)


def _submit(client: httpx.Client, workflow_url: str) -> str:
    response = client.post(
        f"{WES}/runs",
        files={
            "workflow_type": (None, "NFL"),
            "workflow_type_version": (None, "DSL2"),
            "workflow_url": (None, workflow_url),
            "workflow_params": (None, json.dumps({"standin_tasks": 1})),
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["run_id"]


def test_the_head_job_runs_what_the_trs_uri_resolved_to(live):
    client, registry = live
    uri = registry.uri(RNASEQ, "3.14.0")
    run_id = _submit(client, uri)
    log = _ended(client, run_id)
    assert log["state"] == "COMPLETE", log
    assert log["request"]["workflow_url"] == uri
    resolved = log["resolved_workflow"]
    assert (resolved["url"], resolved["revision"]) == (
        "https://github.com/nf-core/rnaseq",
        "3.14.0",
    )
    cmd = log["run_log"]["cmd"]
    assert cmd[cmd.index("run") + 1] == "https://github.com/nf-core/rnaseq"
    assert cmd[cmd.index("-r") + 1] == "3.14.0"
    console = client.get(f"{WES}/runs/{run_id}/stdout").text
    assert "Launching `https://github.com/nf-core/rnaseq`" in console and "[3.14.0]" in console

    # The same version again, as a Dockstore id: the service asks the registry nothing.
    asked = len(registry.requests)
    again = _submit(client, f"{RNASEQ}:3.14.0")
    assert _ended(client, again)["state"] == "COMPLETE"
    assert len(registry.requests) == asked


def test_the_head_job_runs_the_script_the_primary_descriptor_names(live):
    client, registry = live
    run_id = _submit(client, f"{ALIGN}:v2")
    log = _ended(client, run_id)
    assert log["state"] == "COMPLETE", log
    cmd = log["run_log"]["cmd"]
    assert cmd[cmd.index("run") + 1] == "https://github.com/acme/pipes"
    assert cmd[cmd.index("-r") + 1] == "v2"
    assert cmd[cmd.index("-main-script") + 1] == "workflows/align.nf"
    assert log["resolved_workflow"]["main_script"] == "workflows/align.nf"


def test_a_registry_not_allowed_is_refused_on_the_live_gateway(live):
    client, _ = live
    response = client.post(
        f"{WES}/runs",
        data={
            "workflow_type": "NFL",
            "workflow_type_version": "DSL2",
            "workflow_url": "trs://dockstore.org/%23workflow%2Fgithub.com%2Fnf-core%2Frnaseq/3.14.0",
        },
    )
    assert response.status_code == 400
    assert response.json()["msg"].startswith("workflow_url: TRS host 'dockstore.org' is not one")
