"""The AWS Batch stand-in itself, seen through plain boto3 clients over HTTP.

The clients get only ``endpoint_url``; keys and region come from the environment that the
``aws`` fixture sets, as they will for the product.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from tests.fakes.aws import (
    DEFAULT_STEP_SECONDS,
    ESSENTIAL_CONTAINER_EXITED,
    HEAD_JOB_DEFINITION,
    HEAD_QUEUE,
    LOG_GROUP,
    REGION,
    AwsBatchFake,
)

pytestmark = pytest.mark.backing_independent  # the stand-in alone, no gateway

SPOT_RECLAIMED = "Host EC2 (instance i-0123456789abcdef0) terminated."


@pytest.fixture(autouse=True)
def _quick_steps(aws: AwsBatchFake) -> None:
    """Jobs reach RUNNING in 0.1 s here; the walk itself is tested at the default pace."""
    aws.step_seconds = 0.025


@pytest.fixture
def batch(aws: AwsBatchFake) -> Any:
    return boto3.client("batch", endpoint_url=aws.endpoint_url)


@pytest.fixture
def logs(aws: AwsBatchFake) -> Any:
    return boto3.client("logs", endpoint_url=aws.endpoint_url)


def submit(batch: Any, name: str = "run-1", **extra: Any) -> str:
    return batch.submit_job(
        jobName=name, jobQueue=HEAD_QUEUE, jobDefinition=HEAD_JOB_DEFINITION, **extra
    )["jobId"]


def describe(batch: Any, job_id: str) -> dict[str, Any]:
    (job,) = batch.describe_jobs(jobs=[job_id])["jobs"]
    return job


def poll_until_running(batch: Any, job_id: str, timeout: float = 3.0) -> list[dict[str, Any]]:
    """Every description seen while polling, up to and including the first RUNNING one."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(describe(batch, job_id))
        if seen[-1]["status"] == "RUNNING":
            return seen
        time.sleep(0.01)
    raise AssertionError(f"still {seen[-1]['status']} after {timeout} s")


def read_all_lines(logs: Any, stream: str) -> tuple[list[str], int]:
    """Read a stream page by page the way a tailing reader does; also count the pages."""
    lines: list[str] = []
    token = None
    pages = 0
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = logs.get_log_events(
            logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True, limit=2, **kwargs
        )
        pages += 1
        lines += [event["message"] for event in page["events"]]
        if not page["events"]:
            assert page["nextForwardToken"] == token, "end of stream keeps the token"
            return lines, pages
        token = page["nextForwardToken"]


def test_env_has_keys_and_region_but_no_endpoint(aws: AwsBatchFake) -> None:
    env = aws.env()
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_DEFAULT_REGION"] == REGION
    assert not any(name.startswith("AWS_ENDPOINT_URL") for name in env)
    assert aws.endpoint_url.startswith("http://127.0.0.1:")


def test_standard_setup_is_in_place(aws: AwsBatchFake, batch: Any) -> None:
    (queue,) = batch.describe_job_queues(jobQueues=[HEAD_QUEUE])["jobQueues"]
    assert queue["state"] == "ENABLED"
    assert queue["jobQueueArn"] == aws.head.job_queue_arn
    (definition,) = batch.describe_job_definitions(
        jobDefinitionName=HEAD_JOB_DEFINITION, status="ACTIVE"
    )["jobDefinitions"]
    assert definition["containerProperties"]["image"] == "nextflow/nextflow"


def test_job_walks_to_running_and_stays_there(aws: AwsBatchFake, batch: Any) -> None:
    aws.step_seconds = DEFAULT_STEP_SECONDS
    job_id = submit(batch)
    seen = poll_until_running(batch, job_id)

    order = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"]
    statuses = [job["status"] for job in seen]
    assert statuses == sorted(statuses, key=order.index), "states only move forward"
    assert statuses[0] == "SUBMITTED"
    assert all("logStreamName" not in job["container"] for job in seen[:-1])
    assert "startedAt" not in seen[0]
    running = seen[-1]
    assert running["container"]["logStreamName"] == f"{HEAD_JOB_DEFINITION}/default/{job_id}"
    assert "startedAt" in running

    time.sleep(3 * aws.step_seconds)
    assert describe(batch, job_id)["status"] == "RUNNING"
    assert aws.job(job_id).status == "RUNNING"


def test_held_jobs_stay_queued(aws: AwsBatchFake, batch: Any) -> None:
    aws.step_seconds = None
    job_id = submit(batch)
    time.sleep(0.15)
    assert describe(batch, job_id)["status"] == "SUBMITTED"


def test_finish_zero_succeeds_and_logs_page_to_the_end(
    aws: AwsBatchFake,
    batch: Any,
    logs: Any,
) -> None:
    job_id = submit(batch)
    poll_until_running(batch, job_id)
    aws.log(job_id, ["N E X T F L O W", "Launching `main.nf`"])
    aws.finish(job_id, 0, ["[ab/cdef12] process > hello [100%] 1 of 1 ✔", "Completed"])

    job = describe(batch, job_id)
    assert job["status"] == "SUCCEEDED"
    assert job["container"]["exitCode"] == 0
    assert "statusReason" not in job
    lines, pages = read_all_lines(logs, job["container"]["logStreamName"])
    assert lines == [
        "N E X T F L O W",
        "Launching `main.nf`",
        "[ab/cdef12] process > hello [100%] 1 of 1 ✔",
        "Completed",
    ]
    assert pages == 3  # two full pages of 2, then the empty page
    assert aws.calls["GetLogEvents"] == 3


def test_finish_nonzero_fails_with_exit_code(aws: AwsBatchFake, batch: Any) -> None:
    job_id = submit(batch)
    poll_until_running(batch, job_id)
    aws.finish(job_id, 1, ["ERROR ~ boom"])

    job = describe(batch, job_id)
    assert job["status"] == "FAILED"
    assert job["container"]["exitCode"] == 1
    assert job["statusReason"] == ESSENTIAL_CONTAINER_EXITED
    (summary,) = batch.list_jobs(jobQueue=HEAD_QUEUE, jobStatus="FAILED")["jobSummaryList"]
    assert summary["container"]["exitCode"] == 1


def test_infrastructure_failure_has_reason_and_no_exit_code(
    aws: AwsBatchFake,
    batch: Any,
    logs: Any,
) -> None:
    reclaimed = submit(batch, "reclaimed")
    poll_until_running(batch, reclaimed)
    aws.fail_infrastructure(reclaimed, SPOT_RECLAIMED)
    never_started = submit(batch, "bad-image")
    aws.fail_infrastructure(never_started, "CannotPullContainerError: pull access denied")

    job = describe(batch, reclaimed)
    assert (job["status"], job["statusReason"]) == ("FAILED", SPOT_RECLAIMED)
    assert "exitCode" not in job["container"]
    job = describe(batch, never_started)
    assert job["status"] == "FAILED"
    assert job["statusReason"].startswith("CannotPullContainerError")
    assert "exitCode" not in job["container"]
    assert "logStreamName" not in job["container"]
    with pytest.raises(ClientError) as missing:
        logs.get_log_events(
            logGroupName=LOG_GROUP, logStreamName=f"{HEAD_JOB_DEFINITION}/default/{never_started}"
        )
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_terminate_fails_running_and_queued_jobs(aws: AwsBatchFake, batch: Any) -> None:
    running = submit(batch, "running")
    poll_until_running(batch, running)
    done = submit(batch, "done")
    aws.finish(done, 0)
    aws.step_seconds = None
    queued = submit(batch, "queued")

    for job_id in (running, queued, done):
        batch.terminate_job(jobId=job_id, reason="Cancelled by user")

    for job_id in (running, queued):
        job = describe(batch, job_id)
        assert (job["status"], job["statusReason"]) == ("FAILED", "Cancelled by user")
        assert "exitCode" not in job["container"]
    finished = describe(batch, done)
    assert finished["status"] == "SUCCEEDED"
    assert "statusReason" not in finished
    assert aws.calls["TerminateJob"] == 3


def test_cancel_only_affects_jobs_before_starting(aws: AwsBatchFake, batch: Any) -> None:
    running = submit(batch, "running")
    poll_until_running(batch, running)
    aws.step_seconds = None
    queued = submit(batch, "queued")

    batch.cancel_job(jobId=running, reason="Cancelled by user")
    batch.cancel_job(jobId=queued, reason="Cancelled by user")

    assert describe(batch, running)["status"] == "RUNNING"
    assert describe(batch, queued)["status"] == "FAILED"


def test_list_jobs_filters_and_default_status(aws: AwsBatchFake, batch: Any) -> None:
    succeeded = submit(batch, "run-abc-1")
    aws.finish(succeeded, 0)
    running = submit(batch, "run-abc-2")
    poll_until_running(batch, running)
    other = submit(batch, "other")
    aws.fail_infrastructure(other, "CannotPullContainerError: x")

    def names(**kwargs: Any) -> list[str]:
        return [job["jobName"] for job in batch.list_jobs(**kwargs)["jobSummaryList"]]

    by_name = [{"name": "JOB_NAME", "values": ["RUN-ABC-1"]}]
    assert names(jobQueue=HEAD_QUEUE, filters=by_name) == ["run-abc-1"]
    # A filter ignores jobStatus and finds every status, newest first.
    prefix = [{"name": "JOB_NAME", "values": ["run-abc*"]}]
    assert names(jobQueue=HEAD_QUEUE, filters=prefix, jobStatus="RUNNING") == [
        "run-abc-2",
        "run-abc-1",
    ]
    assert names(jobQueue=HEAD_QUEUE) == ["run-abc-2"], "AWS lists only RUNNING by default"
    assert names(jobQueue=HEAD_QUEUE, jobStatus="FAILED") == ["other"]


def test_list_jobs_pages_with_next_token(aws: AwsBatchFake, batch: Any) -> None:
    for index in range(5):
        submit(batch, f"page-{index}")
    aws.calls.clear()

    pages = []
    kwargs: dict[str, Any] = {
        "jobQueue": HEAD_QUEUE,
        "filters": [{"name": "JOB_NAME", "values": ["page-*"]}],
        "maxResults": 2,
    }
    while True:
        page = batch.list_jobs(**kwargs)
        pages.append([job["jobName"] for job in page["jobSummaryList"]])
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]

    assert pages == [["page-4", "page-3"], ["page-2", "page-1"], ["page-0"]]
    assert aws.calls["ListJobs"] == 3


def test_describe_jobs_in_batches_of_100_is_counted_per_request(
    aws: AwsBatchFake,
    batch: Any,
) -> None:
    known = [submit(batch, f"many-{index}") for index in range(100)]
    aws.calls.clear()

    assert len(batch.describe_jobs(jobs=known)["jobs"]) == 100
    assert aws.calls["DescribeJobs"] == 1

    unknown = [f"00000000-0000-0000-0000-{index:012d}" for index in range(150)]
    ids = known + unknown
    found = []
    for start in range(0, len(ids), 100):
        found += batch.describe_jobs(jobs=ids[start : start + 100])["jobs"]
    assert sorted(job["jobId"] for job in found) == sorted(known), "unknown ids are left out"
    assert aws.calls["DescribeJobs"] == 4

    with pytest.raises(ClientError) as too_many:
        batch.describe_jobs(jobs=ids[:101])
    assert too_many.value.response["Error"]["Code"] == "ClientException"
    # The client refuses this one itself, so the stand-in never receives it.
    with pytest.raises(ParamValidationError):
        batch.describe_jobs(jobs="not-a-list")
    assert aws.calls["DescribeJobs"] == 5
    assert aws.calls["SubmitJob"] == 0


def test_unknown_job_id_describes_as_empty(batch: Any) -> None:
    assert batch.describe_jobs(jobs=["no-such-job"])["jobs"] == []


def test_submit_bodies_are_recorded(aws: AwsBatchFake, batch: Any) -> None:
    job_id = submit(
        batch,
        "nf-run-42",
        containerOverrides={
            "command": ["nextflow", "run", "hello", "-with-trace"],
            "environment": [{"name": "NXF_ANSI_LOG", "value": "false"}],
            "resourceRequirements": [{"type": "MEMORY", "value": "4096"}],
        },
        tags={"wes-run-id": "42"},
    )

    (body,) = aws.submitted
    assert body["jobName"] == "nf-run-42"
    assert body["jobQueue"] == HEAD_QUEUE
    assert body["jobDefinition"] == HEAD_JOB_DEFINITION
    assert body["containerOverrides"]["command"][-1] == "-with-trace"
    assert [env["name"] for env in body["containerOverrides"]["environment"]] == ["NXF_ANSI_LOG"]
    assert body["containerOverrides"]["resourceRequirements"] == [
        {"type": "MEMORY", "value": "4096"}
    ]
    assert body["tags"] == {"wes-run-id": "42"}
    (job,) = aws.jobs()
    assert (job.job_id, job.name, job.tags) == (job_id, "nf-run-42", {"wes-run-id": "42"})
    # Describing twice does not grow the environment (a moto quirk the stand-in removes).
    first = describe(batch, job_id)["container"]["environment"]
    assert describe(batch, job_id)["container"]["environment"] == first


def test_job_names_are_checked_like_aws(aws: AwsBatchFake, batch: Any) -> None:
    with pytest.raises(ClientError) as bad:
        submit(batch, "run.1")
    assert bad.value.response["Error"]["Code"] == "ClientException"
    assert aws.calls["SubmitJob"] == 1, "a refused request was still received"
    assert aws.jobs() == []


def test_reset_wipes_jobs_and_counters(aws: AwsBatchFake, batch: Any) -> None:
    submit(batch)
    assert len(aws.jobs()) == 1

    aws.reset()

    assert aws.jobs() == []
    assert aws.calls == {} and aws.submitted == []
    assert batch.describe_job_queues(jobQueues=[HEAD_QUEUE])["jobQueues"]
