"""End to end on the clouds' stand-ins: `wes-gateway serve` with its own worker and
scheduler, a compute environment per cloud made through the API, runs launched over WES
and Tower, jobs moved by the test inside the stand-ins, and the console read live through
both APIs (each read has a worker copy new lines from the cloud's log service)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fakes.google_cloud import DEFAULT_PROJECT, held_plan
from tests.live import Client, admin_token, execution_env, serve
from workers.backends import google_batch

pytestmark = [pytest.mark.slow, pytest.mark.backing_independent]  # SQLite, the embedded broker


def _until(check, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def clouds(tmp_path, aws, google_adc):
    google_adc.plan_for = lambda job: held_plan()
    env = google_adc.subprocess_env(execution_env(tmp_path / "data"))
    env.update(aws.env())
    with serve(env, kill_at_end=True) as (base, process):
        client = Client(base, admin_token(process))
        envs = {
            "aws": {
                "name": "aws",
                "platform": "aws-batch",
                "config": {
                    "region": aws.region,
                    "headQueue": "head-queue",
                    "workDir": "s3://bucket/work",
                    "endpointUrl": aws.endpoint_url,
                },
            },
            "google": {
                "name": "google",
                "platform": "google-batch",
                "config": {
                    "projectId": DEFAULT_PROJECT,
                    "location": "us-central1",
                    "workDir": "gs://bucket/work",
                    "endpointUrl": google_adc.rest_endpoint,
                },
            },
        }
        ids = {}
        for cloud, spec in envs.items():
            response = httpx.post(
                f"{base}/api/compute-envs", headers=client.headers, json={"computeEnv": spec}
            )
            assert response.status_code == 200, response.text
            ids[cloud] = response.json()["computeEnvId"]
        for env_id in ids.values():  # the worker tries each against its cloud
            url = f"{base}/api/compute-envs/{env_id}"

            def available(url=url) -> bool:
                described = httpx.get(url, headers=client.headers).json()["computeEnv"]
                return described["status"] == "AVAILABLE"

            _until(available, f"{url} to be AVAILABLE")
        yield base, client, ids


def test_a_wes_run_on_aws_batch_with_its_log_live(clouds, aws):
    base, client, ids = clouds
    run_id = client.submit(engine_parameters={"compute_env_id": ids["aws"]})
    assert client.wait(run_id, {"RUNNING"}, timeout=30)[-1] == "RUNNING"
    (job,) = [job for job in aws.jobs() if job.name == f"nf-{run_id}"]
    aws.log(job.job_id, ["N E X T F L O W  ~  version 24.10.4"])
    _until(lambda: "version 24.10.4" in client.get(f"/runs/{run_id}/stdout").text, "the log")
    aws.finish(job.job_id, 0, ["Succeeded   : 4"])
    assert client.wait(run_id, timeout=30)[-1] == "COMPLETE"
    log = httpx.get(f"{base}/api/workflow/{run_id}/log", headers=client.headers).json()["log"]
    assert log["entries"] == ["N E X T F L O W  ~  version 24.10.4", "Succeeded   : 4"]
    assert aws.calls["SubmitJob"] == 1


def test_a_tower_launch_on_google_batch_cancelled(clouds, google_adc):
    base, client, ids = clouds
    response = httpx.post(
        f"{base}/api/workflow/launch",
        headers=client.headers,
        json={"launch": {"pipeline": "nf-core/demo", "computeEnvId": ids["google"]}},
    )
    run_id = response.json()["workflowId"]
    assert client.wait(run_id, {"RUNNING"}, timeout=30)[-1] == "RUNNING"
    name = f"projects/{DEFAULT_PROJECT}/locations/us-central1/jobs/{google_batch.job_id(run_id)}"
    google_adc.write_lines(name, ["Launching `nf-core/demo`"])

    def log_entries() -> list[str]:
        url = f"{base}/api/workflow/{run_id}/log"
        return httpx.get(url, headers=client.headers).json()["log"]["entries"]

    _until(lambda: "Launching `nf-core/demo`" in log_entries(), "the log")
    cancel = httpx.post(f"{base}/api/workflow/{run_id}/cancel", headers=client.headers)
    assert cancel.status_code == 204
    assert client.wait(run_id, timeout=30)[-1] == "CANCELED"
    assert google_adc.calls["CancelJob"] >= 1 and name not in google_adc.jobs
    assert google_adc.calls["CreateJob"] == 1
