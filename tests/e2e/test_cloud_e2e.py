"""End to end on the clouds' stand-ins: `wes-gateway serve` with its own worker and
scheduler, a compute environment per cloud made through the API, runs launched over WES
and Tower, jobs moved by the test inside the stand-ins, and the console read live through
both APIs (each read has a worker copy new lines from the cloud's log service)."""

from __future__ import annotations

from contextlib import contextmanager

import httpx
import pytest

from tests.cloud import run_head_container
from tests.fakes.google_cloud import DEFAULT_PROJECT, held_plan
from tests.live import Client, admin_token, execution_env, free_port, serve, until
from workers.backends import google_batch

pytestmark = [pytest.mark.slow, pytest.mark.backing_independent]  # SQLite, the embedded broker


@pytest.fixture
def clouds(tmp_path, aws, google_adc):
    with _gateway_on_clouds(tmp_path, aws, google_adc) as gateway:
        yield gateway


@contextmanager
def _gateway_on_clouds(tmp_path, aws, google_adc, port: int | None = None, **settings: str):
    google_adc.plan_for = lambda job: held_plan()
    env = google_adc.subprocess_env(execution_env(tmp_path / "data", **settings))
    env.update(aws.env())
    with serve(env, port=port, kill_at_end=True) as (base, process):
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

            until(available, f"{url} to be AVAILABLE")
        yield base, client, ids


def test_a_wes_run_on_aws_batch_with_its_log_live(clouds, aws):
    base, client, ids = clouds
    run_id = client.submit(engine_parameters={"compute_env_id": ids["aws"]})
    assert client.wait(run_id, {"RUNNING"}, timeout=30)[-1] == "RUNNING"
    (job,) = [job for job in aws.jobs() if job.name == f"nf-{run_id}"]
    aws.log(job.job_id, ["N E X T F L O W  ~  version 24.10.4"])
    until(lambda: "version 24.10.4" in client.get(f"/runs/{run_id}/stdout").text, "the log")
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

    until(lambda: "Launching `nf-core/demo`" in log_entries(), "the log")
    cancel = httpx.post(f"{base}/api/workflow/{run_id}/cancel", headers=client.headers)
    assert cancel.status_code == 204
    assert client.wait(run_id, timeout=30)[-1] == "CANCELED"
    assert google_adc.calls["CancelJob"] >= 1 and name not in google_adc.jobs
    assert google_adc.calls["CreateJob"] == 1


@pytest.fixture
def traced_clouds(tmp_path, aws, google_adc):
    """The gateway, reachable by head jobs (they report to it with -with-tower), which
    stops a head job still running 2 s after its run ended."""
    port = free_port()
    public = {"WES_GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    grace = {"WES_GATEWAY_JOB_END_GRACE": "2"}
    with _gateway_on_clouds(tmp_path, aws, google_adc, port=port, **public, **grace) as gateway:
        yield gateway


TRACED_PARAMS = {"standin_tasks": 2, "standin_task_seconds": 0.1}


def _system_logs(client: Client, run_id: str) -> list[str]:
    return client.get(f"/runs/{run_id}").json()["run_log"]["system_logs"]


def test_a_traced_aws_head_job_that_outlives_its_run_is_stopped_and_its_log_kept(
    traced_clouds, aws, tmp_path
):
    """Nextflow reports the run's end (-with-tower) and exits, but its head job goes on
    (a post-run script that hangs): after the grace the gateway stops it, copies the
    console to its end and says so in the run's system logs; the run stays COMPLETE."""
    _, client, ids = traced_clouds
    run_id = client.submit(engine_parameters={"compute_env_id": ids["aws"]}, **TRACED_PARAMS)
    job = until(lambda: [j for j in aws.jobs() if j.name == f"nf-{run_id}"], "the job")[0]
    (sent,) = [body for body in aws.submitted if body["jobName"] == f"nf-{run_id}"]
    overrides = sent["containerOverrides"]
    environment = {item["name"]: item["value"] for item in overrides["environment"]}
    printed: list[str] = []

    def log(line: str) -> None:
        printed.append(line)
        aws.log(job.job_id, [line])

    code = run_head_container(overrides["command"], environment, tmp_path / "head", log)
    assert code == 0 and printed
    assert client.wait(run_id, timeout=30)[-1] == "COMPLETE"
    assert aws.job(job.job_id).status == "RUNNING"  # the container has not exited
    stopped = until(lambda: aws.job(job.job_id).status == "FAILED", "the job to be stopped")
    assert stopped and "wes-gateway" in aws.job(job.job_id).status_reason
    until(lambda: client.get(f"/runs/{run_id}/stdout").text.splitlines() == printed, "the log")
    logs = until(lambda: _system_logs(client, run_id), "the system logs")
    assert any("still running" in line and "stopped" in line for line in logs)
    assert client.get(f"/runs/{run_id}/status").json()["state"] == "COMPLETE"


def test_a_traced_google_head_job_reclaimed_after_its_run_ended_says_so(
    traced_clouds, google_adc, tmp_path
):
    """The VM is taken back (Spot) after Nextflow reported the run's end: the run keeps
    its end (COMPLETE), its console is copied to the last line, and the platform's
    reason for the job's end is in the run's system logs."""
    _, client, ids = traced_clouds
    google_adc.lines_for = lambda job: []  # it prints what the stand-in prints, no more
    run_id = client.submit(engine_parameters={"compute_env_id": ids["google"]}, **TRACED_PARAMS)
    name = f"projects/{DEFAULT_PROJECT}/locations/us-central1/jobs/{google_batch.job_id(run_id)}"
    until(lambda: name in google_adc.jobs, "the job")
    (runnable,) = google_adc.created(name).task_groups[0].task_spec.runnables
    command = [runnable.container.entrypoint, *runnable.container.commands]
    environment = dict(runnable.environment.variables)
    printed: list[str] = []

    def log(line: str) -> None:
        printed.append(line)
        google_adc.write_lines(name, [line])

    assert run_head_container(command, environment, tmp_path / "head", log) == 0
    assert client.wait(run_id, timeout=30)[-1] == "COMPLETE"
    google_adc.finish(name, "FAILED", exit_code=50001)
    logs = until(lambda: _system_logs(client, run_id), "the system logs")
    assert any("PREEMPTED" in line and "preempted" in line for line in logs)
    until(lambda: client.get(f"/runs/{run_id}/stdout").text.splitlines() == printed, "the log")
    assert client.get(f"/runs/{run_id}/status").json()["state"] == "COMPLETE"
