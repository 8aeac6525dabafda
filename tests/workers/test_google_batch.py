"""Head jobs on Google Batch, driven through the product's own code path against the
Google stand-in (tests/fakes/google_cloud.py) over real HTTP connections, with
Application Default Credentials served by its metadata server."""

from __future__ import annotations

import time

import pytest
from google.cloud import batch_v1

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
from tests.fakes.google_cloud import DEFAULT_PROJECT, Step, held_plan, stderr
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import State
from workers import execution
from workers.backends import google_batch
from workers.backends.google_batch import GoogleBatchBackend

LOCATION = "us-central1"


@pytest.fixture
def google(google_adc):
    """The stand-in with jobs held RUNNING until a test ends them."""
    google_adc.locations = {LOCATION}
    google_adc.plan_for = lambda job: held_plan()
    return google_adc


@pytest.fixture
def compute_env(client, admin, google):
    def make(**config) -> str:
        defaults = {
            "projectId": DEFAULT_PROJECT,
            "location": LOCATION,
            "workDir": "gs://bucket/work",
            "headJobCpus": 2,
            "headJobMemoryMb": 6144,
            "serviceAccount": "nf-head@fake-project.iam.gserviceaccount.com",
            "network": "default",
            "labels": {"team": "genomics"},
            "endpointUrl": google.rest_endpoint,
        }
        name = f"gcp-{time.monotonic_ns()}"
        return create_compute_env(client, admin, "google-batch", name, {**defaults, **config})

    return make


def job_name(run_id: str) -> str:
    return f"projects/{DEFAULT_PROJECT}/locations/{LOCATION}/jobs/{google_batch.job_id(run_id)}"


def test_a_wes_run_runs_as_a_head_job_and_completes(
    client, alice, db, google, compute_env, executor
):
    run_id = wes_run(client, alice, compute_env(), greeting="hi")
    execution.submit(executor, run_id)
    sent = google.created(job_name(run_id))
    (group,) = sent.task_groups
    (runnable,) = group.task_spec.runnables
    assert runnable.container.image_uri.startswith("nextflow/nextflow:")
    command = [runnable.container.entrypoint, *runnable.container.commands]
    assert command[:2] == ["bash", "-c"]
    argv = command[command.index("nf-launch") + 1 :]
    assert argv[:5] == ["nextflow", "-log", f"nf-{run_id}.log", "run", "nf-core/demo"]
    assert argv[argv.index("-with-tower") + 1] == "http://gateway.example:8000/api"
    env = dict(runnable.environment.variables)
    assert env["TOWER_WORKFLOW_ID"] == run_id and env["TOWER_ACCESS_TOKEN"]
    assert env["NXF_WORK"] == "gs://bucket/work" and env["NXF_ANSI_LOG"] == "false"
    assert group.task_spec.compute_resource.cpu_milli == 2000
    assert group.task_spec.compute_resource.memory_mib == 6144
    policy = sent.allocation_policy
    assert policy.service_account.email == "nf-head@fake-project.iam.gserviceaccount.com"
    assert policy.network.network_interfaces[0].network == "default"
    standard = batch_v1.AllocationPolicy.ProvisioningModel.STANDARD
    assert policy.instances[0].policy.provisioning_model == standard
    assert sent.logs_policy.destination == batch_v1.LogsPolicy.Destination.CLOUD_LOGGING
    assert sent.labels["team"] == "genomics" and sent.labels["managed-by"] == "wes-gateway"

    poll_until(executor, db, run_id, State.RUNNING)
    google.write_lines(job_name(run_id), ["N E X T F L O W  ~  version 24.10.4", stderr("warn")])
    google.calls.clear()
    execution.poll_active(executor)
    assert google.calls["ListLogEntries"] == 0  # a poll reads no logs
    client.get(f"{WES}/runs/{run_id}/stdout", headers=alice)  # a reader asks for them
    execution.refresh_log(executor, run_id)  # what the worker does with that request
    stdout = client.get(f"{WES}/runs/{run_id}/stdout", headers=alice).text
    assert "N E X T F L O W  ~  version 24.10.4\nwarn\n" in stdout
    google.finish(job_name(run_id), "SUCCEEDED", exit_code=0, lines=["Succeeded   : 4"])
    poll_until(executor, db, run_id, State.COMPLETE)
    log = client.get(f"/api/workflow/{run_id}/log", headers=alice).json()["log"]
    assert log["entries"][-3:] == ["N E X T F L O W  ~  version 24.10.4", "warn", "Succeeded   : 4"]
    assert log["pending"] is False
    run_log = client.get(f"{WES}/runs/{run_id}", headers=alice).json()["run_log"]
    assert run_log["exit_code"] == 0 and run_log["cmd"][0] == "nextflow"


def test_a_tower_launch_fails_with_nextflow_s_exit_code(
    client, alice, db, google, compute_env, executor
):
    run_id = tower_launch(client, alice, compute_env(spot=True))
    execution.submit(executor, run_id)
    spot = batch_v1.AllocationPolicy.ProvisioningModel.SPOT
    assert (
        google.created(job_name(run_id)).allocation_policy.instances[0].policy.provisioning_model
        == spot
    )
    poll_until(executor, db, run_id, State.RUNNING)
    google.finish(job_name(run_id), "FAILED", exit_code=1, lines=["ERROR ~ the pipeline failed"])
    poll_until(executor, db, run_id, State.EXECUTOR_ERROR)
    described = client.get(f"/api/workflow/{run_id}", headers=alice).json()["workflow"]
    assert described["status"] == "FAILED" and described["exitStatus"] == 1
    log = client.get(f"/api/workflow/{run_id}/log", headers=alice).json()["log"]
    assert "ERROR ~ the pipeline failed" in log["entries"]


@pytest.mark.parametrize(
    ("exit_code", "wanted", "words"),
    [
        (50001, State.PREEMPTED, "preempted"),
        (50002, State.SYSTEM_ERROR, "stopped reporting"),
        (None, State.SYSTEM_ERROR, "Job state is set from RUNNING to FAILED"),
    ],
)
def test_infrastructure_failures(
    client, alice, db, google, compute_env, executor, exit_code, wanted, words
):
    run_id = wes_run(client, alice, compute_env())
    if exit_code is None:  # a job that failed before its task ran: no exit code at all
        google.plan_for = lambda job: [Step("QUEUED", 0.0), Step("RUNNING", None)]
    execution.submit(executor, run_id)
    poll_until(executor, db, run_id, State.RUNNING)
    record = google.job(job_name(run_id))
    google.finish(job_name(run_id), "FAILED", exit_code=exit_code or 0)
    if exit_code is None:
        record.job.status.status_events[-1].task_execution = None
    poll_until(executor, db, run_id, wanted)
    logs = system_logs(client, alice, run_id)
    assert any(words in line for line in logs), logs


def test_a_wrong_location_is_a_system_error_with_google_s_message(
    client, alice, db, google, compute_env, executor
):
    run_id = wes_run(client, alice, compute_env(location="europe-west9"))
    execution.submit(executor, run_id)
    assert state(db, run_id) is State.SYSTEM_ERROR
    logs = system_logs(client, alice, run_id)
    assert any("Google Batch refused the head job: NOT_FOUND" in line for line in logs)
    assert any("europe-west9" in line for line in logs)
    assert google.jobs == {}


def test_a_new_environment_is_checked_against_google(client, alice, google, compute_env, executor):
    assert execution.check_compute_env(executor, compute_env()) == "AVAILABLE"
    bad = compute_env(location="europe-west9")
    assert execution.check_compute_env(executor, bad) == "INVALID"
    described = client.get(f"/api/compute-envs/{bad}", headers=alice).json()["computeEnv"]
    assert "NOT_FOUND" in described["message"] and "europe-west9" in described["message"]


def test_cancel_cancels_the_job_then_deletes_it(client, alice, db, google, compute_env, executor):
    run_id = wes_run(client, alice, compute_env())
    execution.submit(executor, run_id)
    poll_until(executor, db, run_id, State.RUNNING)
    google.write_lines(job_name(run_id), ["working"])
    assert client.post(f"{WES}/runs/{run_id}/cancel", headers=alice).status_code == 200
    execution.cancel(executor, run_id)
    assert google.calls["CancelJob"] == 1
    poll_until(executor, db, run_id, State.CANCELED)
    assert google.calls["DeleteJob"] == 1 and job_name(run_id) not in google.jobs
    assert "working" in client.get(f"{WES}/runs/{run_id}/stdout", headers=alice).text


def test_a_submit_retried_after_a_crash_makes_no_second_job(
    client, alice, db, google, compute_env, executor
):
    run_id = wes_run(client, alice, compute_env())
    first = submit_then_crash(db, executor, run_id, GoogleBatchBackend)
    assert execution.sweep(executor, lambda _: None) == [run_id]
    execution.submit(executor, run_id)
    assert google.calls["CreateJob"] == 2  # the retry was answered ALREADY_EXISTS
    assert list(google.jobs) == [job_name(run_id)]
    with db.session() as session:
        assert session.get(Run, run_id).backend_handle == first.handle


@pytest.mark.parametrize("active", [1, 100, 250])
def test_a_poll_cycle_makes_calls_by_the_page_not_by_the_run(
    client, alice, db, google, compute_env, executor, active
):
    env_id = compute_env()
    run_ids = [wes_run(client, alice, env_id) for _ in range(active)]
    for run_id in run_ids:
        execution.submit(executor, run_id)
    google.calls.clear()
    assert execution.poll_active(executor) == active
    pages = -(-active // google_batch.LIST_PAGE_SIZE)
    assert dict(google.calls) == {"ListJobs": pages}
    # One run ends: the next cycle asks for that job alone, besides the list.
    google.finish(job_name(run_ids[0]), "SUCCEEDED")
    google.calls.clear()
    execution.poll_active(executor)
    assert google.calls["GetJob"] == 1 and google.calls["ListJobs"] == pages
    assert state(db, run_ids[0]) is State.COMPLETE


def test_a_create_whose_answer_is_lost_is_retried_and_makes_one_job(
    client, alice, db, google, compute_env, executor
):
    """CreateJob is idempotent by job id: the job made by a create whose answer was lost
    answers the retry ALREADY_EXISTS and is adopted; the run never fails meanwhile."""
    run_id = wes_run(client, alice, compute_env())
    google.lose_answer("CreateJob", "UNAVAILABLE")
    execution.submit(executor, run_id)
    assert state(db, run_id) is State.INITIALIZING
    assert list(google.jobs) == [job_name(run_id)]
    time_passes(db, run_id)
    assert execution.sweep(executor, lambda _: None) == [run_id]
    execution.submit(executor, run_id)
    assert google.calls["CreateJob"] == 2 and list(google.jobs) == [job_name(run_id)]
    with db.session() as session:
        assert job_name(run_id) in session.get(Run, run_id).backend_handle
    poll_until(executor, db, run_id, State.RUNNING)


def test_creates_that_never_answer_end_after_a_bounded_number_of_attempts(
    client, alice, db, google, compute_env, executor
):
    run_id = wes_run(client, alice, compute_env())
    google.fail_next("CreateJob", "UNAVAILABLE", times=execution.MAX_CREATE_ATTEMPTS)
    for _ in range(execution.MAX_CREATE_ATTEMPTS):
        execution.submit(executor, run_id)
        assert state(db, run_id) is State.INITIALIZING
        time_passes(db, run_id)
    execution.submit(executor, run_id)  # looks only: no job is found
    assert google.calls["CreateJob"] == execution.MAX_CREATE_ATTEMPTS
    assert state(db, run_id) is State.SYSTEM_ERROR
    assert any("could not be known" in line for line in system_logs(client, alice, run_id))
    assert google.jobs == {}


def test_a_refused_create_is_a_system_error_at_once(
    client, alice, db, google, compute_env, executor
):
    run_id = wes_run(client, alice, compute_env())
    google.fail_next("CreateJob", "PERMISSION_DENIED", "batch.jobs.create denied")
    execution.submit(executor, run_id)
    assert state(db, run_id) is State.SYSTEM_ERROR
    logs = system_logs(client, alice, run_id)
    assert any("refused" in line and "batch.jobs.create denied" in line for line in logs)


def test_a_run_s_outputs_are_the_objects_under_its_gcs_outdir(
    client, alice, db, google, compute_env, executor
):
    """Listed page by page through Cloud Storage's JSON API, with the worker's ADC."""
    google.objects_page_size = 2
    for name, data in {
        "runs/r1/multiqc/report.html": b"<html/>",
        "runs/r1/fastqc/a.zip": b"zip",
        "runs/r1/fastqc/b.zip": b"zip2",
        "runs/r1/": b"",  # a folder marker
        "runs/r1/x/../../escape": b"a name, not a path",
        "runs/r10/not-this-run.txt": b"another prefix",
    }.items():
        google.put_object("results", name, data)
    run_id = wes_run(client, alice, compute_env(), outdir="gs://results/runs/r1")
    execution.submit(executor, run_id)
    poll_until(executor, db, run_id, State.RUNNING)
    google.finish(job_name(run_id), "SUCCEEDED", exit_code=0)
    poll_until(executor, db, run_id, State.COMPLETE)
    body = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    assert body["outputs"] == {
        "fastqc/a.zip": {"location": "gs://results/runs/r1/fastqc/a.zip", "size": 3},
        "fastqc/b.zip": {"location": "gs://results/runs/r1/fastqc/b.zip", "size": 4},
        "multiqc/report.html": {"location": "gs://results/runs/r1/multiqc/report.html", "size": 7},
    }
    assert google.calls["ListObjects"] == 3  # two names a page
    response = client.get(f"{WES}/runs/{run_id}/outputs/fastqc/a.zip", headers=alice)
    assert response.status_code == 404
    assert "gs://results/runs/r1/fastqc/a.zip" in response.json()["msg"]
