"""The WES clients that exist, sending exactly what their sources send, followed to the
end of their runs on a live gateway with the Nextflow stand-in; every WES answer checked
against the official spec.

- IRIDA Next (phac-nml/irida-next, ``Integrations::Ga4ghWesApi::V1::Client``): a JSON body
  holding every RunRequest field, the absent ones as ``""`` and the objects as JSON text
  (``workflow_params.to_json``), with ``workflow_engine_version`` pinned by the pipeline
  and ``workflow_engine_parameters`` ``{"-r": <pipeline version>}``; then it polls
  ``/runs/{id}/status`` and reads ``/runs/{id}``.
- sapporo (sapporo-wes/sapporo-service, its integration tests' ``submit_workflow``): a
  multipart form with the script and its input as ``workflow_attachment`` files and
  ``workflow_url`` the script's name; engine parameters as Nextflow flags.
- Seqera's WES: ``workspaceId`` and ``computeEnvId`` in ``workflow_engine_parameters``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.live import TERMINAL, admin_token, execution_env, serve, spec_checked_client

pytestmark = [pytest.mark.slow, pytest.mark.backing_independent]  # its gateway: embedded

WES = "/ga4gh/wes/v1"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A gateway that runs the stand-in, and an HTTP client whose WES answers are checked
    against the official spec."""
    data = tmp_path_factory.mktemp("clients") / "data"
    env = execution_env(data)
    with serve(env, kill_at_end=True) as (base, process):
        token = admin_token(process)
        with spec_checked_client(base, token) as client:
            yield client, Path(env["WES_GATEWAY_DATA_DIR"])


def _poll(client: httpx.Client, run_id: str, timeout: float = 60) -> list[str]:
    """What IRIDA Next's StatusService and sapporo's wait_for_completion do: GET /status
    until a terminal state; returns the distinct states seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"{WES}/runs/{run_id}/status")
        assert response.status_code == 200, response.text
        state = response.json()["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in TERMINAL:
            return seen
        assert time.monotonic() < deadline, f"still {state}: {seen}"
        time.sleep(0.1)


def test_irida_next_runs_the_revision_params_and_nextflow_version_it_asked_for(live):
    client, data = live
    base_params = {
        "workflow_params": "",
        "workflow_type": "",
        "workflow_type_version": "",
        "tags": "",
        "workflow_engine": "",
        "workflow_engine_version": "",
        "workflow_engine_parameters": "",
        "workflow_url": "",
    }
    as_wes_params = {
        "workflow_params": json.dumps(
            {
                "--input": "/irida/runs/ab/cd/samplesheet.csv",
                "--outdir": "/irida/runs/ab/cd/output/",
                "--standin_tasks": "2",
                "--standin_task_seconds": "1",
            }
        ),
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "tags": json.dumps({"createdBy": "john.doe@localhost"}),
        "workflow_engine": "nextflow",
        "workflow_engine_version": "24.10.3",  # the pipeline's pin, not the installed one
        "workflow_engine_parameters": json.dumps({"-r": "1.0.2"}),
        "workflow_url": "https://github.com/phac-nml/iridanextexample",
    }
    response = client.post(
        f"{WES}/runs",
        content=json.dumps({**base_params, **as_wes_params}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]

    seen = _poll(client, run_id)
    assert seen[-1] == "COMPLETE", seen
    assert "RUNNING" in seen
    log = client.get(f"{WES}/runs/{run_id}").json()
    assert log["state"] == "COMPLETE" and log["run_log"]["exit_code"] == 0
    cmd = log["run_log"]["cmd"]
    assert cmd[cmd.index("run") + 1] == "https://github.com/phac-nml/iridanextexample"
    assert cmd[cmd.index("-r") + 1] == "1.0.2"
    assert log["request"]["tags"] == {"createdBy": "john.doe@localhost"}
    console = client.get(f"{WES}/runs/{run_id}/stdout").text
    # NXF_VER reached the launcher: the head job ran the version IRIDA Next pinned.
    assert "N E X T F L O W  ~  version 24.10.3" in console
    assert "[1.0.2]" in console and "Succeeded   : 2" in console
    params = json.loads((data / "runs" / run_id / "params.json").read_text())
    assert params == {
        "input": "/irida/runs/ab/cd/samplesheet.csv",
        "outdir": "/irida/runs/ab/cd/output/",
        "standin_tasks": 2,
        "standin_task_seconds": 1,
    }


def test_irida_next_sees_a_failed_run_as_an_error_state(live):
    client, _ = live
    response = client.post(
        f"{WES}/runs",
        json={
            "workflow_params": json.dumps({"--standin_fail": "1"}),
            "workflow_type": "NFL",
            "workflow_type_version": "DSL2",
            "tags": json.dumps({}),
            "workflow_engine": "nextflow",
            "workflow_engine_version": "24.10.3",
            "workflow_engine_parameters": json.dumps({"-r": "1.0.2"}),
            "workflow_url": "https://github.com/phac-nml/iridanextexample",
        },
    )
    assert response.status_code == 200, response.text
    # IRIDA Next's States::ERROR_STATES
    assert _poll(client, response.json()["run_id"])[-1] in {"EXECUTOR_ERROR", "SYSTEM_ERROR"}


def test_sapporo_s_submission_with_attachments_runs_to_its_end(live, tmp_path):
    client, data = live
    (tmp_path / "hello.nf").write_text("workflow { println 'hello' }\n")
    (tmp_path / "input.txt").write_text("hello input\n")
    files = [
        ("workflow_attachment", (name, (tmp_path / name).read_bytes(), "application/octet-stream"))
        for name in ("hello.nf", "input.txt")
    ]
    form = {
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "workflow_engine": "nextflow",
        "workflow_url": "hello.nf",
        "workflow_params": json.dumps({"input_file": "input.txt", "standin_tasks": 1}),
        "workflow_engine_parameters": json.dumps(
            {"-with-report": "", "-with-trace": "trace.txt", "-profile": "test"}
        ),
    }
    response = client.post(f"{WES}/runs", data=form, files=files)
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]
    assert _poll(client, run_id)[-1] == "COMPLETE"
    log = client.get(f"{WES}/runs/{run_id}").json()
    assert log["run_log"]["exit_code"] == 0
    assert log["outputs"] is not None
    launch = data / "runs" / run_id / "launch"
    assert (launch / "input.txt").read_text() == "hello input\n"
    assert (launch / "trace.txt").read_text().startswith("task_id\thash")
    assert len(list(launch.glob("report-*.html"))) == 1  # Nextflow's default name

    # sapporo's Docker example (-with-docker) is refused, naming the flag.
    form["workflow_engine_parameters"] = json.dumps({"-with-docker": "ubuntu:20.04"})
    refused = client.post(f"{WES}/runs", data=form, files=files)
    assert refused.status_code == 400
    assert refused.json()["msg"].startswith("workflow_engine_parameters.-with-docker: ")


def test_seqera_s_names_put_the_run_in_a_workspace_on_its_compute_environment(live):
    client, _ = live
    org = client.post(
        "/api/orgs", json={"organization": {"name": "lab", "fullName": "The lab"}}
    ).json()["organization"]["orgId"]
    ws = client.post(
        f"/api/orgs/{org}/workspaces",
        json={"workspace": {"name": "genomics", "fullName": "Genomics", "visibility": "PRIVATE"}},
    ).json()["workspace"]["id"]
    env = client.post(
        "/api/compute-envs",
        params={"workspaceId": ws},
        json={"computeEnv": {"name": "lab-local", "platform": "local-platform"}},
    ).json()["computeEnvId"]
    form = {
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "workflow_url": "nf-core/demo",
        "workflow_params": json.dumps({"standin_tasks": 1}),
        "workflow_engine_parameters": json.dumps(
            {
                "workspaceId": str(ws),
                "computeEnvId": env,
                "revision": "main",
                "profiles": ["test"],
                "runName": "seqera-wes-1",
            }
        ),
    }
    response = client.post(f"{WES}/runs", files={k: (None, v) for k, v in form.items()})
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]
    assert _poll(client, run_id)[-1] == "COMPLETE"
    listed = client.get(f"{WES}/runs", params={"workspace_id": ws}).json()["runs"]
    assert [run["run_id"] for run in listed] == [run_id]
    workflow = client.get(f"/api/workflow/{run_id}", params={"workspaceId": ws}).json()
    assert workflow["workflow"]["runName"] == "seqera-wes-1"
    cmd = client.get(f"{WES}/runs/{run_id}").json()["run_log"]["cmd"]
    assert cmd[cmd.index("-profile") + 1] == "test" and cmd[cmd.index("-r") + 1] == "main"


def test_the_reference_wes_client_follows_a_run_it_cannot_submit(live, tmp_path):
    """wes-service's WESClient refuses a .nf workflow (it knows .cwl, .wdl and .py) and
    posts runs without its auth header; a run posted with the bearer token as it builds
    its parts is followed to its end with its status and log calls, which send it."""
    from wes_client.util import WESClient

    client, _ = live
    base = client.base_url
    token = client.headers["Authorization"]
    wes = WESClient(
        {"auth": {"Authorization": token}, "proto": base.scheme, "host": base.netloc.decode()}
    )
    assert wes.get_service_info()["workflow_type_versions"]["NFL"]
    (tmp_path / "main.nf").write_text("workflow { println 'hi' }\n")
    (tmp_path / "params.json").write_text(json.dumps({"standin_tasks": 1}))
    with pytest.raises(TypeError, match="Unsupported workflow type: .nf"):
        wes.run(str(tmp_path / "main.nf"), f"file://{tmp_path / 'params.json'}", [])

    with open(tmp_path / "main.nf", "rb") as script:
        posted = httpx.post(
            f"{base}{WES}/runs",
            headers=wes.auth,
            data={
                "workflow_params": (tmp_path / "params.json").read_text(),
                "workflow_type": "NFL",
                "workflow_type_version": "DSL2",
                "workflow_url": "main.nf",
            },
            files=[("workflow_attachment", ("main.nf", script))],
        )
    assert posted.status_code == 200, posted.text
    run_id = posted.json()["run_id"]
    deadline = time.monotonic() + 60
    while wes.get_run_status(run_id)["state"] not in TERMINAL:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    log = wes.get_run_log(run_id)
    assert log["state"] == "COMPLETE" and log["run_log"]["exit_code"] == 0
    assert run_id in {run["run_id"] for run in wes.list_runs()["runs"]}


def test_resume_by_id_reuses_the_tasks_that_completed(live):
    client, _ = live
    form = {
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "workflow_url": "nf-core/demo",
        "workflow_params": json.dumps({"standin_tasks": 3, "standin_fail": 3}),
    }
    first = client.post(f"{WES}/runs", files={k: (None, v) for k, v in form.items()})
    assert first.status_code == 200, first.text
    old = first.json()["run_id"]
    assert _poll(client, old)[-1] == "EXECUTOR_ERROR"
    resumed = client.post(
        f"{WES}/runs/{old}/resume", json={"workflow_params": {"standin_tasks": 3}}
    )
    assert resumed.status_code == 200, resumed.text
    new = resumed.json()["run_id"]
    assert _poll(client, new)[-1] == "COMPLETE"
    console = client.get(f"{WES}/runs/{new}/stdout").text
    assert "Cached process > STANDIN_TASK (1)" in console
    assert "Cached process > STANDIN_TASK (2)" in console
    assert "Submitted process > STANDIN_TASK (3)" in console
    assert client.post(f"{WES}/runs/{new}/resume").status_code == 200
