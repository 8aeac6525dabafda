"""Head jobs on AWS Batch, driven through the product's own code path against moto's
server (tests/fakes/aws.py) over a real HTTP connection."""

from __future__ import annotations

import base64
import json
import time

import boto3
import pytest
from sqlalchemy import select

from tests.cloud import (
    create_compute_env,
    poll_until,
    state,
    submit_then_crash,
    system_logs,
    time_passes,
    tower_launch,
    wes_run,
)
from tests.conftest import WES
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import State
from wes_gateway.http import dispatch
from wes_gateway.infra.queue import REFRESH_LOG
from workers import execution
from workers.backends import aws_batch
from workers.backends.aws_batch import AwsBatchBackend


@pytest.fixture(autouse=True)
def _fresh_worker(aws):
    """Each test starts as a new worker process would: no job definition remembered
    (the stand-in is wiped between tests)."""
    aws_batch._definitions.clear()


@pytest.fixture
def tasks_sent(monkeypatch):
    """The tasks the API sent, as (task name, run id)."""
    tasks: list[tuple[str, str]] = []
    real = dispatch.send

    def record(app, task, run_id, **options):
        tasks.append((task, run_id))
        return real(app, task, run_id, **options)

    monkeypatch.setattr(dispatch, "send", record)
    return tasks


@pytest.fixture
def compute_env(client, admin, aws):
    def make(**config) -> str:
        defaults = {
            "region": "eu-west-1",
            "headQueue": "head-queue",
            "computeQueue": "work-queue",
            "workDir": "s3://bucket/work",
            "headJobCpus": 2,
            "headJobMemoryMb": 6144,
            "endpointUrl": aws.endpoint_url,
            "environment": [{"name": "NXF_OPTS", "value": "-Xms500m", "head": True}],
        }
        name = f"aws-{time.monotonic_ns()}"
        return create_compute_env(client, admin, "aws-batch", name, {**defaults, **config})

    return make


def job_of(aws, run_id: str):
    (job,) = [job for job in aws.jobs() if job.name == f"nf-{run_id}"]
    return job


def test_a_wes_run_runs_as_a_head_job_and_completes(
    client, alice, db, aws, compute_env, executor, tasks_sent
):
    env_id = compute_env()
    run_id = wes_run(client, alice, env_id, greeting="hi")
    execution.submit(executor, run_id)
    (sent,) = aws.submitted
    assert sent["jobName"] == f"nf-{run_id}" and sent["jobQueue"] == "head-queue"
    assert sent["tags"] == {"wes-gateway-run-id": run_id}
    overrides = sent["containerOverrides"]
    command = overrides["command"]
    assert command[:2] == ["bash", "-c"]
    argv = command[command.index("nf-launch") + 1 :]
    assert argv[:4] == ["nextflow", "-log", f"nf-{run_id}.log", "run"]
    assert argv[4] == "nf-core/demo"
    assert argv[argv.index("-params-file") :][:2] == ["-params-file", "params.json"]
    assert argv[argv.index("-with-tower") :][:2] == [
        "-with-tower",
        "http://gateway.example:8000/api",
    ]
    env = {item["name"]: item["value"] for item in overrides["environment"]}
    assert env["TOWER_WORKFLOW_ID"] == run_id and env["TOWER_ACCESS_TOKEN"]
    assert env["TOWER_API_ENDPOINT"] == "http://gateway.example:8000/api"
    assert env["NXF_WORK"] == "s3://bucket/work" and env["NXF_ANSI_LOG"] == "false"
    assert env["NXF_OUT_FILE"] == f"nf-{run_id}.txt" and env["NXF_OPTS"] == "-Xms500m"
    assert json.loads(base64.b64decode(env["NXF_PARAMS_BASE64"])) == {"greeting": "hi"}
    config = base64.b64decode(env["NXF_CONFIG_BASE64"]).decode()
    assert "process.executor = 'awsbatch'" in config and "process.queue = 'work-queue'" in config
    resources = {item["type"]: item["value"] for item in overrides["resourceRequirements"]}
    assert resources == {"VCPU": "2", "MEMORY": "6144"}

    poll_until(executor, db, run_id, State.RUNNING)
    job = job_of(aws, run_id)
    aws.log(job.job_id, ["N E X T F L O W  ~  version 24.10.4", "Launching `nf-core/demo`"])
    # Polling reads no logs: only a reader makes the workers copy the console.
    aws.calls.clear()
    execution.poll_active(executor)
    assert aws.calls["GetLogEvents"] == 0 and aws.calls["DescribeJobs"] == 1
    log = client.get(f"/api/workflow/{run_id}/log", headers=alice).json()["log"]
    assert log["entries"] == [] and log["pending"] is True
    assert tasks_sent[-1] == (REFRESH_LOG, run_id)
    client.get(f"/api/workflow/{run_id}/log", headers=alice)
    assert tasks_sent.count((REFRESH_LOG, run_id)) == 1  # paced: not one task per read
    execution.refresh_log(executor, run_id)  # what the worker does with that task
    log = client.get(f"/api/workflow/{run_id}/log", headers=alice).json()["log"]
    assert log["entries"] == ["N E X T F L O W  ~  version 24.10.4", "Launching `nf-core/demo`"]
    execution.refresh_log(executor, run_id)  # nothing new: nothing appended twice
    aws.finish(job.job_id, 0, ["Succeeded   : 4"])
    poll_until(executor, db, run_id, State.COMPLETE)
    stdout = client.get(f"{WES}/runs/{run_id}/stdout", headers=alice).text
    assert stdout.splitlines() == [
        "N E X T F L O W  ~  version 24.10.4",
        "Launching `nf-core/demo`",
        "Succeeded   : 4",
    ]
    run_log = client.get(f"{WES}/runs/{run_id}", headers=alice).json()["run_log"]
    assert run_log["exit_code"] == 0 and run_log["cmd"][0] == "nextflow"
    described = client.get(f"/api/compute-envs/{env_id}", headers=alice).json()["computeEnv"]
    assert described["lastUsed"] is not None


def test_a_tower_launch_on_the_environment_fails_with_nextflow_s_exit_code(
    client, alice, db, aws, compute_env, executor
):
    run_id = tower_launch(client, alice, compute_env(headJobDefinition="nf-head"))
    execution.submit(executor, run_id)
    assert aws.submitted[0]["jobDefinition"] == "nf-head"
    poll_until(executor, db, run_id, State.RUNNING)
    aws.finish(job_of(aws, run_id).job_id, 1, ["ERROR ~ the pipeline failed"])
    poll_until(executor, db, run_id, State.EXECUTOR_ERROR)
    described = client.get(f"/api/workflow/{run_id}", headers=alice).json()["workflow"]
    assert described["status"] == "FAILED" and described["exitStatus"] == 1
    log = client.get(f"/api/workflow/{run_id}/log", headers=alice).json()["log"]
    assert log["entries"] == ["ERROR ~ the pipeline failed"] and log["pending"] is False


@pytest.mark.parametrize(
    ("reason", "wanted"),
    [
        ("CannotPullContainerError: pull image manifest has been retried", State.SYSTEM_ERROR),
        ("Host EC2 (instance i-0123456789abcdef0) terminated.", State.PREEMPTED),
    ],
)
def test_infrastructure_failures(client, alice, db, aws, compute_env, executor, reason, wanted):
    run_id = wes_run(client, alice, compute_env())
    execution.submit(executor, run_id)
    poll_until(executor, db, run_id, State.RUNNING)
    aws.fail_infrastructure(job_of(aws, run_id).job_id, reason)
    poll_until(executor, db, run_id, wanted)
    logs = system_logs(client, alice, run_id)
    assert any(reason in line for line in logs)


def test_a_wrong_queue_is_a_system_error_with_aws_s_message(
    client, alice, db, aws, compute_env, executor
):
    run_id = wes_run(client, alice, compute_env(headQueue="no-such-queue"))
    execution.submit(executor, run_id)
    assert state(db, run_id) is State.SYSTEM_ERROR
    logs = system_logs(client, alice, run_id)
    assert any("AWS Batch refused the head job" in line for line in logs)
    assert aws.jobs() == []


def test_cancel_terminates_the_job(client, alice, db, aws, compute_env, executor):
    run_id = wes_run(client, alice, compute_env())
    execution.submit(executor, run_id)
    poll_until(executor, db, run_id, State.RUNNING)
    assert client.post(f"{WES}/runs/{run_id}/cancel", headers=alice).status_code == 200
    execution.cancel(executor, run_id)
    assert aws.calls["TerminateJob"] == 1
    poll_until(executor, db, run_id, State.CANCELED)
    job = job_of(aws, run_id)
    assert job.status == "FAILED" and "Cancelled" in job.status_reason


def test_a_submit_retried_after_a_crash_makes_no_second_job(
    client, alice, db, aws, compute_env, executor
):
    run_id = wes_run(client, alice, compute_env())
    first = submit_then_crash(db, executor, run_id, AwsBatchBackend)
    assert execution.sweep(executor, lambda _: None) == [run_id]
    execution.submit(executor, run_id)
    assert len([job for job in aws.jobs() if job.name == f"nf-{run_id}"]) == 1
    with db.session() as session:
        assert session.get(Run, run_id).backend_handle == first.handle
    assert aws.calls["SubmitJob"] == 1


def test_a_deregistered_head_job_definition_is_registered_again(
    client, alice, db, aws, compute_env, executor
):
    env_id = compute_env()
    first = wes_run(client, alice, env_id)
    execution.submit(executor, first)
    definition = aws.submitted[0]["jobDefinition"]
    batch = aws.client("batch")
    for found in batch.describe_job_definitions(jobDefinitionName=definition)["jobDefinitions"]:
        batch.deregister_job_definition(jobDefinition=found["jobDefinitionArn"])
    second = wes_run(client, alice, env_id)
    execution.submit(executor, second)
    assert state(db, second) in (State.INITIALIZING, State.RUNNING)
    assert job_of(aws, second).job_definition == definition


@pytest.mark.parametrize(("active", "calls"), [(1, 1), (100, 1), (101, 2)])
def test_one_poll_cycle_describes_100_jobs_a_call(
    client, alice, db, aws, compute_env, executor, active, calls
):
    env_id = compute_env()
    run_ids = [wes_run(client, alice, env_id) for _ in range(active)]
    # The suite's executor holds each SubmitJob to 1 s; 100 of them against the in-process
    # stand-in may see one slower than that on a loaded machine, which this test is not about.
    patient = execution.Executor(
        db=db, settings=executor.settings.model_copy(update={"submit_stale_after": 60.0})
    )
    for run_id in run_ids:
        execution.submit(patient, run_id)
    with db.session() as session:
        handles = session.scalars(select(Run.backend_handle).where(Run.id.in_(run_ids))).all()
    assert None not in handles and len(handles) == active
    aws.calls.clear()
    assert execution.poll_active(executor) == active
    assert dict(aws.calls) == {"DescribeJobs": calls}


def test_a_new_environment_is_checked_against_aws(client, admin, alice, aws, compute_env, executor):
    good = compute_env(computeQueue=None)  # the stand-in has the head queue only
    assert (
        client.get(f"/api/compute-envs/{good}", headers=admin).json()["computeEnv"]["status"]
        == "CREATING"
    )
    assert execution.check_compute_env(executor, good) == "AVAILABLE"
    bad = compute_env(computeQueue="no-such-queue")
    assert execution.check_compute_env(executor, bad) == "INVALID"
    described = client.get(f"/api/compute-envs/{bad}", headers=alice).json()["computeEnv"]
    assert described["status"] == "INVALID" and "no-such-queue" in described["message"]
    response = client.post(
        "/api/workflow/launch",
        headers=alice,
        json={"launch": {"pipeline": "nf-core/demo", "computeEnvId": bad}},
    )
    assert response.status_code == 400
    assert "computeEnvId" in response.json()["message"]
    assert "no-such-queue" in response.json()["message"]


def test_a_check_lost_on_the_way_is_made_by_the_sweep(aws, compute_env, executor, db):
    from wes_gateway.domain.models import ComputeEnv

    env_id = compute_env(computeQueue=None)
    execution.sweep(executor, lambda _: None)  # requeue_after is 0 here
    with db.session() as session:
        assert session.get(ComputeEnv, env_id).status == "AVAILABLE"


@pytest.mark.parametrize("lost", ["5xx", "late"])
def test_a_submit_whose_answer_is_lost_waits_and_then_finds_its_one_job(
    client, alice, db, aws, compute_env, executor, lost
):
    """AWS made the job but the worker never saw the answer (a 500, or an answer after the
    create call's timeout): no retry of SubmitJob (that would start a second job), no
    SYSTEM_ERROR (the job may run); the next submit finds the job and adopts it."""
    run_id = wes_run(client, alice, compute_env())
    aws.lose_answer("SubmitJob", late_by=None if lost == "5xx" else 4.0)
    started = time.monotonic()
    execution.submit(executor, run_id)
    took = time.monotonic() - started
    assert state(db, run_id) is State.INITIALIZING
    assert took < executor.settings.submit_stale_after  # never long enough to be taken over
    assert aws.calls["SubmitJob"] == 1
    (job,) = [job for job in aws.jobs() if job.name == f"nf-{run_id}"]
    time_passes(db, run_id)
    assert execution.sweep(executor, lambda _: None) == [run_id]
    execution.submit(executor, run_id)
    assert aws.calls["SubmitJob"] == 1 and len(aws.jobs()) == 1
    with db.session() as session:
        assert session.get(Run, run_id).backend_handle == job.job_id
    poll_until(executor, db, run_id, State.RUNNING)


def test_a_second_job_started_by_a_takeover_is_stopped(
    client, alice, db, aws, compute_env, executor
):
    """The worst case: while worker A's SubmitJob waits for its answer, worker B takes the
    run over and, ListJobs not showing A's job yet, starts a second. Whichever stores its
    handle first keeps its job; the other stops its own."""
    run_id = wes_run(client, alice, compute_env())
    aws.list_lag = 60.0
    # Worker B's whole submit happens while A's create call waits: give that call more
    # than the shortest budget, so a busy machine does not time A out first.
    stale_after = 30.0
    executor = execution.Executor(
        db=db, settings=executor.settings.model_copy(update={"submit_stale_after": stale_after})
    )

    def worker_b_takes_over() -> None:
        time_passes(db, run_id, stale_after + 1)
        execution.submit(executor, run_id)

    aws.before_answer("SubmitJob", worker_b_takes_over)
    execution.submit(executor, run_id)  # worker A
    first, second = aws.jobs()
    with db.session() as session:
        assert session.get(Run, run_id).backend_handle == second.job_id
    assert aws.calls["TerminateJob"] == 1
    assert aws.job(first.job_id).status == "FAILED"
    assert aws.job(second.job_id).status != "FAILED"
    poll_until(executor, db, run_id, State.RUNNING)


def test_the_create_call_is_one_attempt_held_within_the_budget(settings, aws):
    from pydantic import ValidationError

    from wes_gateway.infra.config import Settings

    with pytest.raises(ValidationError, match="submit_stale_after"):
        Settings(submit_stale_after=1)
    assert settings.create_budget == settings.submit_stale_after / 2
    config = {"region": "eu-west-1", "headQueue": "q", "endpointUrl": aws.endpoint_url}
    backend = AwsBatchBackend.from_settings(settings, config)
    create = backend.create_client.meta.config
    assert create.retries["total_max_attempts"] == 1
    assert create.connect_timeout + create.read_timeout <= settings.create_budget


def test_a_run_s_outputs_are_the_objects_under_its_s3_outdir(
    client, alice, db, aws, compute_env, executor
):
    s3 = boto3.client("s3", endpoint_url=aws.endpoint_url, region_name="eu-west-1")
    s3.create_bucket(
        Bucket="results-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    published = {
        "run1/multiqc/report.html": b"<html>report</html>",
        "run1/fastqc/a.zip": b"zip",
        "run1/fastqc/": b"",  # a console's folder marker: no file
        "run1/pipeline_info/../escape.txt": b"a key, not a path",
        "run10/other-run.txt": b"another prefix",
    }
    for key, body in published.items():
        s3.put_object(Bucket="results-bucket", Key=key, Body=body)
    run_id = wes_run(client, alice, compute_env(), outdir="s3://results-bucket/run1")
    execution.submit(executor, run_id)
    poll_until(executor, db, run_id, State.RUNNING)
    aws.finish(job_of(aws, run_id).job_id, 0, ["Succeeded   : 1"])
    poll_until(executor, db, run_id, State.COMPLETE)
    body = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    assert body["outputs"] == {
        "fastqc/a.zip": {"location": "s3://results-bucket/run1/fastqc/a.zip", "size": 3},
        "multiqc/report.html": {
            "location": "s3://results-bucket/run1/multiqc/report.html",
            "size": len(b"<html>report</html>"),
        },
    }
    assert "outputs_truncated" not in body
    # Not proxied: the answer names where the file is.
    response = client.get(f"{WES}/runs/{run_id}/outputs/fastqc/a.zip", headers=alice)
    assert response.status_code == 404
    assert "s3://results-bucket/run1/fastqc/a.zip" in response.json()["msg"]


def test_an_outdir_that_cannot_be_listed_is_said_in_the_system_logs(
    client, alice, db, aws, compute_env, executor
):
    run_id = wes_run(client, alice, compute_env(), outdir="s3://no-such-bucket/results")
    execution.submit(executor, run_id)
    poll_until(executor, db, run_id, State.RUNNING)
    aws.finish(job_of(aws, run_id).job_id, 0, ["done"])
    poll_until(executor, db, run_id, State.COMPLETE)
    body = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    assert body["outputs"] == {}
    (said,) = [line for line in system_logs(client, alice, run_id) if "outputs" in line]
    assert said.startswith("the outputs under s3://no-such-bucket/results could not be listed: ")
    assert "NoSuchBucket" in said


def test_an_s3_listing_stops_at_the_bound(client, alice, db, aws, compute_env, executor):
    s3 = boto3.client("s3", endpoint_url=aws.endpoint_url, region_name="eu-west-1")
    s3.create_bucket(
        Bucket="many-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    for number in range(12):
        s3.put_object(Bucket="many-bucket", Key=f"out/f{number:02d}.txt", Body=b"x")
    bounded = execution.Executor(
        db=db, settings=executor.settings.model_copy(update={"max_outputs": 10})
    )
    run_id = wes_run(client, alice, compute_env(), outdir="s3://many-bucket/out/")
    execution.submit(bounded, run_id)
    poll_until(bounded, db, run_id, State.RUNNING)
    aws.finish(job_of(aws, run_id).job_id, 0, ["done"])
    poll_until(bounded, db, run_id, State.COMPLETE)
    body = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    assert sorted(body["outputs"]) == [f"f{number:02d}.txt" for number in range(10)]
    assert body["outputs_truncated"] is True


def test_a_worker_builds_an_environment_s_backend_once_and_uses_it_again(
    client, alice, db, aws, compute_env, executor, monkeypatch
):
    built = []
    real = execution.make_backend

    def counted(platform, settings, config):
        built.append(platform)
        return real(platform, settings, config)

    monkeypatch.setattr(execution, "make_backend", counted)
    env_id = compute_env()
    run_ids = [wes_run(client, alice, env_id) for _ in range(3)]
    for run_id in run_ids:
        execution.submit(executor, run_id)
    assert execution.poll_active(executor) == 3
    assert built == ["aws-batch"]
    other = compute_env(headJobCpus=4)  # another config: a backend of its own
    execution.submit(executor, wes_run(client, alice, other))
    assert built == ["aws-batch", "aws-batch"]
