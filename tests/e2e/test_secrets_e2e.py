"""End to end: a pipeline secret and a git credential reach a local head job the way
Nextflow reads them (its secrets store through NXF_SECRETS_FILE, its SCM config through
NXF_SCM_FILE), the pipeline's process sees the secret, and neither appears anywhere
else: not in the console, Nextflow's log, the trace records, the command line, any API
answer, the service's own output, or any file left once the run has ended."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.live import Client, admin_token, execution_env, output_of, serve

pytestmark = [pytest.mark.slow, pytest.mark.backing_independent]  # its gateway: embedded

SECRET = "pa55-w0rd-only-the-pipeline-sees"
GIT_TOKEN = "ghp_t0ken0nlyn3xtfl0wse3sEXAMPLE000000"


def test_a_secret_reaches_the_pipeline_and_nothing_else(tmp_path):
    env = execution_env(tmp_path / "data")
    with serve(env, kill_at_end=True) as (base, process):
        client = Client(base, admin_token(process))
        api = f"{base}/api"
        headers = client.headers

        def call(method: str, path: str, **kwargs) -> httpx.Response:
            return httpx.request(method, f"{api}{path}", headers=headers, timeout=30, **kwargs)

        created = call("POST", "/pipeline-secrets", json={"name": "DB_PASSWORD", "value": SECRET})
        assert created.status_code == 200, created.text
        git = {
            "name": "gh",
            "provider": "github",
            "keys": {"username": "ann", "password": GIT_TOKEN},
        }
        assert call("POST", "/credentials", json={"credentials": git}).status_code == 200
        launch = {
            "pipeline": "nf-core/demo",
            "workspaceSecrets": ["DB_PASSWORD"],
            "paramsText": json.dumps({"standin_tasks": 2, "standin_secrets": "DB_PASSWORD"}),
        }
        launched = call("POST", "/workflow/launch", json={"launch": launch})
        assert launched.status_code == 200, launched.text
        run_id = launched.json()["workflowId"]
        assert client.wait(run_id)[-1] == "COMPLETE"

        # The pipeline's process saw the secret (its script wrote what $DB_PASSWORD held).
        data = Path(env["WES_GATEWAY_DATA_DIR"])
        seen = sorted(data.rglob("DB_PASSWORD.secret"))
        assert len(seen) == 2 and {path.read_text() for path in seen} == {SECRET}
        # Nextflow was given the SCM config file (and read it: the stand-in logs its path).
        log = call("GET", f"/workflow/{run_id}/download", params={"fileName": f"nf-{run_id}.log"})
        assert log.status_code == 200 and "Using SCM config path:" in log.text

        answers = [
            log.text,
            client.get(f"/runs/{run_id}").text,
            client.get(f"/runs/{run_id}/stdout").text,
            client.get(f"/runs/{run_id}/stderr").text,
            call("GET", f"/workflow/{run_id}").text,
            call("GET", f"/workflow/{run_id}/launch").text,
            call("GET", f"/workflow/{run_id}/log").text,
            call("GET", f"/workflow/{run_id}/tasks").text,
            call("GET", f"/workflow/{run_id}/progress").text,
            call("GET", f"/workflow/{run_id}/metrics").text,
            call(
                "GET", f"/workflow/{run_id}/download", params={"fileName": f"nf-{run_id}.txt"}
            ).text,
            call("GET", "/pipeline-secrets").text,
            call("GET", "/credentials").text,
        ]
        launch_record = json.loads(answers[5])["launch"]
        assert launch_record.get("workspaceSecrets") == ["DB_PASSWORD"]
        for answer in answers:
            assert SECRET not in answer and GIT_TOKEN not in answer
        assert SECRET not in output_of(process) and GIT_TOKEN not in output_of(process)
        # No file the run left holds either, but the task's own output of it.
        for path in data.rglob("*"):
            if path.is_file() and path not in seen:
                content = path.read_bytes()
                assert SECRET.encode() not in content, path
                assert GIT_TOKEN.encode() not in content, path
        assert not any(data.rglob(".secrets"))  # the store and SCM files went with the job
