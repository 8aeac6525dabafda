"""Head jobs on AWS Batch, driven through the product's own code path against moto's
server (tests/fakes/aws.py) over a real HTTP connection."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.conftest import WES, submit
from wes_gateway import dispatch
from wes_gateway.models import Run
from wes_gateway.states import State, transition
from workers import execution
from workers.backends import aws_batch
from workers.backends.aws_batch import AwsBatchBackend
from workers.celery_app import REFRESH_LOG


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
def executor(db, settings):
    worker_settings = settings.model_copy(
        update={
            "public_url": "http://gateway.example:8000",
            "submit_stale_after": 0.0,
            "requeue_after": 0.0,
        }
    )
    return execution.Executor(db=db, settings=worker_settings)


@pytest.fixture
def compute_env(client, admin, aws):
    def make(**config) -> str:
        body = {
            "computeEnv": {
                "name": f"aws-{len(aws.jobs())}-{time.monotonic_ns()}",
                "platform": "aws-batch",
                "config": {
                    "region": "eu-west-1",
                    "headQueue": "head-queue",
                    "computeQueue": "work-queue",
                    "workDir": "s3://bucket/work",
                    "headJobCpus": 2,
                    "headJobMemoryMb": 6144,
                    "endpointUrl": aws.endpoint_url,
                    "environment": [{"name": "NXF_OPTS", "value": "-Xms500m", "head": True}],
                    **config,
                },
            }
        }
        response = client.post("/api/compute-envs", headers=admin, json=body)
        assert response.status_code == 200, response.text
        return response.json()["computeEnvId"]

    return make


def wes_run(client, alice, env_id: str, **params) -> str:
    return submit(
        client,
        alice,
        workflow_params=json.dumps(params),
        workflow_engine_parameters=json.dumps({"compute_env_id": env_id}),
    )


def state(db, run_id: str) -> State:
    with db.session() as session:
        return session.get(Run, run_id).state


def poll_until(executor, db, run_id: str, wanted: State, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while state(db, run_id) is not wanted:
        assert time.monotonic() < deadline, f"{run_id} is {state(db, run_id)}, not {wanted}"
        execution.poll_active(executor)
        time.sleep(0.05)


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


def test_a_tower_launch_on_the_environment_fails_with_nextflow_s_exit_code(
    client, alice, db, aws, compute_env, executor
):
    env_id = compute_env(headJobDefinition="nf-head")
    response = client.post(
        "/api/workflow/launch",
        headers=alice,
        json={"launch": {"pipeline": "nf-core/demo", "computeEnvId": env_id}},
    )
    run_id = response.json()["workflowId"]
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
    system_logs = client.get(f"{WES}/runs/{run_id}", headers=alice).json()["run_log"]["system_logs"]
    assert any(reason in line for line in system_logs)


def test_a_wrong_queue_is_a_system_error_with_aws_s_message(
    client, alice, db, aws, compute_env, executor
):
    run_id = wes_run(client, alice, compute_env(headQueue="no-such-queue"))
    execution.submit(executor, run_id)
    assert state(db, run_id) is State.SYSTEM_ERROR
    system_logs = client.get(f"{WES}/runs/{run_id}", headers=alice).json()["run_log"]["system_logs"]
    assert any("AWS Batch refused the head job" in line for line in system_logs)
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
    # A worker claims the run and submits the job, then dies before storing the handle.
    with db.session() as session:
        transition(session, run_id, State.INITIALIZING, "worker 1", allowed_from={State.QUEUED})
        run = session.get(Run, run_id)
        snap = execution.snapshot(run, executor.run_dir(run_id))
        config = run.compute_env.config
    first = AwsBatchBackend(config).submit(snap)
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


def test_one_poll_cycle_describes_250_jobs_in_3_calls(
    client, alice, db, aws, compute_env, executor
):
    env_id = compute_env()
    run_ids = [wes_run(client, alice, env_id) for _ in range(250)]
    for run_id in run_ids:
        execution.submit(executor, run_id)
    aws.calls.clear()
    assert execution.poll_active(executor) == 250
    assert aws.calls["DescribeJobs"] == 3
    assert sum(aws.calls.values()) == 3
