"""The Google Cloud stand-in, driven by the official clients the way a backend would.

REST calls use Application Default Credentials from the fake metadata server, exactly as
in production; gRPC calls use an insecure channel.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator

import google.auth
import grpc
import pytest
from google.api_core import exceptions
from google.api_core.retry import Retry
from google.auth import compute_engine
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import batch_v1, logging_v2
from google.cloud import logging as cloud_logging
from google.cloud.batch_v1.services.batch_service.transports import BatchServiceGrpcTransport
from google.cloud.logging_v2.resource import Resource
from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
from google.cloud.logging_v2.services.logging_service_v2.transports import (
    LoggingServiceV2GrpcTransport,
)
from google.logging.type.log_severity_pb2 import LogSeverity

from tests.fakes.google_cloud import (
    ACCESS_TOKEN,
    DEFAULT_PROJECT,
    GoogleCloudFake,
    Step,
    compile_filter,
    default_plan,
    held_plan,
    stderr,
)

pytestmark = pytest.mark.backing_independent  # the stand-in alone, no gateway

PROJECT = DEFAULT_PROJECT
REGION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
NO_RETRY = {"retry": None, "timeout": 5}
State = batch_v1.JobStatus.State


def head_job(run_id: str = "run-1", *, logs: bool = True, **labels: str) -> batch_v1.Job:
    """A Nextflow head job as a backend would submit it."""
    runnable = batch_v1.Runnable(
        container=batch_v1.Runnable.Container(
            image_uri="nextflow/nextflow:25.04.0",
            entrypoint="",
            commands=["nextflow", "run", "hello"],
        ),
        environment=batch_v1.Environment(variables={"NXF_ANSI_LOG": "false", "RUN_ID": run_id}),
    )
    task = batch_v1.TaskSpec(
        runnables=[runnable],
        compute_resource=batch_v1.ComputeResource(cpu_milli=2000, memory_mib=4096),
        max_retry_count=0,
        max_run_duration=datetime.timedelta(hours=24),
    )
    destination = (
        batch_v1.LogsPolicy.Destination.CLOUD_LOGGING
        if logs
        else batch_v1.LogsPolicy.Destination.DESTINATION_UNSPECIFIED
    )
    return batch_v1.Job(
        task_groups=[batch_v1.TaskGroup(task_count=1, task_spec=task)],
        allocation_policy=batch_v1.AllocationPolicy(
            service_account=batch_v1.ServiceAccount(
                email=f"nf-head@{PROJECT}.iam.gserviceaccount.com"
            ),
            instances=[
                batch_v1.AllocationPolicy.InstancePolicyOrTemplate(
                    policy=batch_v1.AllocationPolicy.InstancePolicy(machine_type="e2-standard-2")
                )
            ],
            location=batch_v1.AllocationPolicy.LocationPolicy(
                allowed_locations=[f"regions/{REGION}"]
            ),
        ),
        labels={"run-id": run_id, **labels},
        logs_policy=batch_v1.LogsPolicy(destination=destination),
    )


@pytest.fixture
def rest_client(google_adc: GoogleCloudFake) -> batch_v1.BatchServiceClient:
    """The production construction: ADC plus an endpoint."""
    return batch_v1.BatchServiceClient(
        transport="rest", client_options={"api_endpoint": google_adc.rest_endpoint}
    )


@pytest.fixture
def grpc_channel(fake_google: GoogleCloudFake) -> Iterator[grpc.Channel]:
    channel = grpc.insecure_channel(fake_google.grpc_target)
    yield channel
    channel.close()


@pytest.fixture
def grpc_client(grpc_channel: grpc.Channel) -> batch_v1.BatchServiceClient:
    return batch_v1.BatchServiceClient(transport=BatchServiceGrpcTransport(channel=grpc_channel))


@pytest.fixture
def logging_client(
    google_adc: GoogleCloudFake, monkeypatch: pytest.MonkeyPatch
) -> cloud_logging.Client:
    """The high-level Logging client over HTTP, credentials and project from ADC."""
    # Each listed entry's Logger probes http://metadata.google.internal. (hard-coded, not
    # GCE_METADATA_HOST) for the resource it would write as; nothing here writes.
    monkeypatch.setattr(
        logging_v2.logger, "detect_resource", lambda project="": Resource(type="global", labels={})
    )
    return cloud_logging.Client(
        _use_grpc=False, client_options={"api_endpoint": google_adc.rest_endpoint}
    )


def wait_for(
    client: batch_v1.BatchServiceClient,
    name: str,
    done: Callable[[batch_v1.Job], bool],
    seconds: float = 3.0,
) -> tuple[batch_v1.Job, list[str]]:
    """Poll a job until ``done``; return it and the distinct states seen, in order."""
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while True:
        job = client.get_job(name=name, timeout=5)
        state = State(job.status.state).name
        if not seen or seen[-1] != state:
            seen.append(state)
        if done(job):
            return job, seen
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} still {state} after {seconds}s (seen {seen})")
        time.sleep(0.02)


def is_terminal(job: batch_v1.Job) -> bool:
    return job.status.state in (State.SUCCEEDED, State.FAILED, State.CANCELLED)


def task_log_filter(uid: str) -> str:
    return f'logName="projects/{PROJECT}/logs/batch_task_logs" AND labels.job_uid="{uid}"'


# --- credentials ---------------------------------------------------------------------------


def test_adc_resolves_to_fake_metadata_server(google_adc: GoogleCloudFake) -> None:
    credentials, project = google.auth.default()
    assert isinstance(credentials, compute_engine.Credentials)
    assert project == PROJECT
    credentials.refresh(Request())
    assert credentials.token == ACCESS_TOKEN
    assert google_adc.metadata_requests["/computeMetadata/v1/project/project-id"] >= 1
    assert (
        google_adc.metadata_requests["/computeMetadata/v1/instance/service-accounts/default/token"]
        == 1
    )


def test_subprocess_env_drops_project_variables(google_cloud: GoogleCloudFake) -> None:
    env = google_cloud.subprocess_env({"GOOGLE_CLOUD_PROJECT": "elsewhere", "PATH": "/bin"})
    assert "GOOGLE_CLOUD_PROJECT" not in env
    assert env["PATH"] == "/bin"
    assert env["GCE_METADATA_HOST"] == env["GCE_METADATA_IP"] == google_cloud.metadata_host
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == ""


# --- jobs over REST ------------------------------------------------------------------------


def test_rest_job_runs_to_success_and_is_stored_as_sent(
    google_adc: GoogleCloudFake, rest_client: batch_v1.BatchServiceClient
) -> None:
    created = rest_client.create_job(parent=PARENT, job_id="nf-run-1", job=head_job("run-1"))

    assert created.name == f"{PARENT}/jobs/nf-run-1"
    assert created.uid.startswith("nf-run-1-") and created.uid != "nf-run-1"
    assert created.status.state == State.QUEUED
    assert created.create_time.year >= 2024
    assert created.task_groups[0].name == f"{PARENT}/jobs/nf-run-1/taskGroups/group0"

    job, seen = wait_for(rest_client, created.name, is_terminal)
    assert seen[-1] == "SUCCEEDED"
    assert seen == [s for s in ["QUEUED", "SCHEDULED", "RUNNING", "SUCCEEDED"] if s in seen]
    events = job.status.status_events
    assert [event.type_ for event in events] == ["STATUS_CHANGED"] * 3
    assert events[0].description.startswith("Job state is set from QUEUED to SCHEDULED")
    assert events[-1].description.startswith("Job state is set from RUNNING to SUCCEEDED")
    assert "task_execution" in events[-1]
    assert events[-1].task_execution.exit_code == 0
    assert job.status.task_groups["group0"].counts == {"SUCCEEDED": 1}
    assert job.status.run_duration.total_seconds() > 0

    sent = google_adc.created("nf-run-1")
    runnable = sent.task_groups[0].task_spec.runnables[0]
    assert runnable.container.image_uri == "nextflow/nextflow:25.04.0"
    assert list(runnable.container.commands) == ["nextflow", "run", "hello"]
    assert dict(runnable.environment.variables) == {"NXF_ANSI_LOG": "false", "RUN_ID": "run-1"}
    assert sent.task_groups[0].task_spec.compute_resource.memory_mib == 4096
    assert sent.task_groups[0].task_spec.max_run_duration == datetime.timedelta(hours=24)
    policy = sent.allocation_policy
    assert policy.instances[0].policy.machine_type == "e2-standard-2"
    assert list(policy.location.allowed_locations) == [f"regions/{REGION}"]
    assert dict(sent.labels) == {"run-id": "run-1"}
    assert sent.logs_policy.destination == batch_v1.LogsPolicy.Destination.CLOUD_LOGGING
    assert sent.name == "" and sent.uid == ""  # as received, before the server filled them
    assert google_adc.authorizations == {f"Bearer {ACCESS_TOKEN}": google_adc.calls.total()}


def test_rest_errors_map_to_http_exceptions(
    google_adc: GoogleCloudFake, rest_client: batch_v1.BatchServiceClient
) -> None:
    rest_client.create_job(parent=PARENT, job_id="dup", job=head_job(), **NO_RETRY)
    with pytest.raises(exceptions.Conflict) as conflict:
        rest_client.create_job(parent=PARENT, job_id="dup", job=head_job(), **NO_RETRY)
    assert conflict.value.code == 409
    assert "already exists" in conflict.value.message

    for bad in ("Bad_ID", "-x", "x-", "9abc", "a" * 64):
        with pytest.raises(exceptions.BadRequest):
            rest_client.create_job(parent=PARENT, job_id=bad, job=head_job(), **NO_RETRY)

    with pytest.raises(exceptions.NotFound):
        rest_client.get_job(name=f"{PARENT}/jobs/missing", **NO_RETRY)

    with pytest.raises(exceptions.BadRequest, match="label"):
        rest_client.create_job(
            parent=PARENT, job_id="bad-label", job=head_job(**{"Owner": "x"}), **NO_RETRY
        )
    assert google_adc.calls["CreateJob"] == 8
    assert "bad-label" not in [record.job_id for record in google_adc.jobs.values()]


def test_unknown_location_is_rejected_with_its_name(
    fake_google: GoogleCloudFake, rest_client: batch_v1.BatchServiceClient
) -> None:
    fake_google.locations = {"us-central1", "europe-west2"}
    with pytest.raises(exceptions.NotFound, match="europe-west9"):
        rest_client.create_job(
            parent=f"projects/{PROJECT}/locations/europe-west9",
            job_id="far",
            job=head_job(),
            **NO_RETRY,
        )
    job = rest_client.create_job(
        parent=f"projects/{PROJECT}/locations/europe-west2", job_id="near", job=head_job()
    )
    assert job.name.endswith("/locations/europe-west2/jobs/near")


def test_list_jobs_filters_on_labels_and_state_and_pages(
    fake_google: GoogleCloudFake, rest_client: batch_v1.BatchServiceClient
) -> None:
    fake_google.plan_for = lambda job: (
        held_plan() if job.labels["owner"] == "alice" else default_plan(0.0)
    )
    for index, owner in enumerate(["alice", "bob", "alice", "carol", "alice"]):
        rest_client.create_job(
            parent=PARENT, job_id=f"job-{index}", job=head_job(f"r{index}", owner=owner)
        )

    pager = rest_client.list_jobs(
        request={"parent": PARENT, "filter": 'labels.owner="alice"', "page_size": 2}
    )
    pages = list(pager.pages)
    assert [len(page.jobs) for page in pages] == [2, 1]
    names = [job.name.rsplit("/", 1)[-1] for page in pages for job in page.jobs]
    assert names == ["job-0", "job-2", "job-4"]

    def listed(filter_: str) -> list[str]:
        request = {"parent": PARENT, "filter": filter_}
        return sorted(job.name.rsplit("/", 1)[-1] for job in rest_client.list_jobs(request=request))

    assert listed('status.state="SUCCEEDED"') == ["job-1", "job-3"]
    assert listed('status.state!="SUCCEEDED"') == ["job-0", "job-2", "job-4"]
    assert listed('labels.owner="bob" OR labels.owner="carol"') == ["job-1", "job-3"]
    assert listed('labels.owner="alice" AND labels.run-id="r2"') == ["job-2"]
    assert listed(f'name="{PARENT}/jobs/job-3"') == ["job-3"]
    assert listed("") == [f"job-{index}" for index in range(5)]
    assert listed('labels.owner="nobody"') == []
    with pytest.raises(exceptions.BadRequest, match="unsupported field"):
        list(
            rest_client.list_jobs(request={"parent": PARENT, "filter": 'colour="red"'}, **NO_RETRY)
        )

    everywhere = rest_client.list_jobs(parent=f"projects/{PROJECT}/locations/-")
    assert len(list(everywhere)) == 5


def test_held_job_stays_running_until_finished(
    fake_google: GoogleCloudFake, rest_client: batch_v1.BatchServiceClient
) -> None:
    fake_google.plan_for = lambda job: held_plan()
    created = rest_client.create_job(parent=PARENT, job_id="held", job=head_job())
    job, _ = wait_for(rest_client, created.name, lambda job: job.status.state == State.RUNNING)
    time.sleep(0.2)
    assert rest_client.get_job(name=created.name).status.state == State.RUNNING

    fake_google.finish("held", "FAILED", exit_code=2, lines=[stderr("ERROR ~ no such file")])

    job = rest_client.get_job(name=created.name)
    assert job.status.state == State.FAILED
    assert job.status.status_events[-1].task_execution.exit_code == 2
    assert job.status.status_events[-1].description.startswith(
        "Job state is set from RUNNING to FAILED"
    )
    with pytest.raises(ValueError, match="already ended"):
        fake_google.finish("held", "SUCCEEDED")


def test_plan_steps_set_outcome_and_exit_code(
    fake_google: GoogleCloudFake, rest_client: batch_v1.BatchServiceClient
) -> None:
    fake_google.plan_for = lambda job: [("QUEUED", 0.0), Step("FAILED", exit_code=50002)]
    created = rest_client.create_job(parent=PARENT, job_id="preempted", job=head_job())
    job = rest_client.get_job(name=created.name)
    assert job.status.state == State.FAILED
    assert job.status.status_events[-1].task_execution.exit_code == 50002
    assert fake_google.job("preempted").state == "FAILED"


def test_cancel_then_delete(
    fake_google: GoogleCloudFake, rest_client: batch_v1.BatchServiceClient
) -> None:
    fake_google.plan_for = lambda job: held_plan()
    created = rest_client.create_job(parent=PARENT, job_id="to-cancel", job=head_job())

    result = rest_client.cancel_job(name=created.name).result(timeout=5)
    assert isinstance(result, batch_v1.CancelJobResponse)
    assert fake_google.jobs[created.name].state == "CANCELLATION_IN_PROGRESS"
    job = rest_client.get_job(name=created.name)
    assert job.status.state == State.CANCELLED
    assert [event.description.split(" for job")[0] for event in job.status.status_events][-2:] == [
        "Job state is set from RUNNING to CANCELLATION_IN_PROGRESS",
        "Job state is set from CANCELLATION_IN_PROGRESS to CANCELLED",
    ]
    with pytest.raises(exceptions.BadRequest, match="terminal state"):
        rest_client.cancel_job(name=created.name, **NO_RETRY)

    rest_client.delete_job(name=created.name).result(timeout=5)
    with pytest.raises(exceptions.NotFound):
        rest_client.get_job(name=created.name, **NO_RETRY)
    with pytest.raises(exceptions.NotFound):
        rest_client.delete_job(name=created.name, **NO_RETRY)
    assert fake_google.created("to-cancel").labels["run-id"] == "run-1"
    assert fake_google.jobs == {}


# --- jobs over gRPC ------------------------------------------------------------------------


def test_grpc_transport_gives_grpc_exceptions(
    fake_google: GoogleCloudFake, grpc_client: batch_v1.BatchServiceClient
) -> None:
    fake_google.plan_for = lambda job: default_plan(0.0, state="FAILED", exit_code=3)
    created = grpc_client.create_job(parent=PARENT, job_id="over-grpc", job=head_job())
    assert created.status.state == State.QUEUED

    job = grpc_client.get_job(name=created.name)
    assert job.status.state == State.FAILED
    assert job.status.status_events[-1].task_execution.exit_code == 3

    with pytest.raises(exceptions.AlreadyExists):
        grpc_client.create_job(parent=PARENT, job_id="over-grpc", job=head_job(), **NO_RETRY)
    with pytest.raises(exceptions.InvalidArgument):
        grpc_client.create_job(parent=PARENT, job_id="Bad_ID", job=head_job(), **NO_RETRY)
    with pytest.raises(exceptions.NotFound):
        grpc_client.get_job(name=f"{PARENT}/jobs/missing", **NO_RETRY)
    assert issubclass(exceptions.AlreadyExists, exceptions.Conflict)
    assert issubclass(exceptions.InvalidArgument, exceptions.BadRequest)

    listed = grpc_client.list_jobs(request={"parent": PARENT, "page_size": 1})
    assert [job.name for job in listed] == [created.name]
    grpc_client.delete_job(name=created.name).result(timeout=5)
    assert fake_google.transport_calls[("grpc", "DeleteJob")] == 1
    assert fake_google.transport_calls[("rest", "DeleteJob")] == 0


# --- logs ----------------------------------------------------------------------------------


def test_logs_read_over_logging_rest_incrementally(
    fake_google: GoogleCloudFake,
    rest_client: batch_v1.BatchServiceClient,
    logging_client: cloud_logging.Client,
) -> None:
    fake_google.plan_for = lambda job: held_plan()
    fake_google.lines_for = lambda job: ["N E X T F L O W  ~  version 25.04.0", "Launching hello"]
    created = rest_client.create_job(parent=PARENT, job_id="logged", job=head_job())
    rest_client.create_job(parent=PARENT, job_id="other", job=head_job())
    assert logging_client.project == PROJECT

    def read(extra: str = "", **kwargs: object) -> list:
        filter_ = task_log_filter(created.uid) + (f" AND {extra}" if extra else "")
        return list(
            logging_client.list_entries(
                resource_names=[f"projects/{PROJECT}"], filter_=filter_, **kwargs
            )
        )

    first = read(page_size=1)  # one entry per page: the pager must follow the tokens
    assert [entry.payload for entry in first] == [
        "N E X T F L O W  ~  version 25.04.0",
        "Launching hello",
    ]
    entry = first[0]
    assert entry.severity == "INFO"
    assert entry.resource.type == "batch.googleapis.com/Job"
    assert entry.labels["job_uid"] == created.uid
    assert entry.labels["task_id"] == f"{created.uid}-group0-0"
    assert entry.log_name == f"projects/{PROJECT}/logs/batch_task_logs"

    fake_google.write_lines("logged", ["[process] hello (1)", stderr("WARN: something odd")])
    fake_google.write_lines("other", ["not mine"])
    last = first[-1].timestamp.isoformat()
    newer = read(f'timestamp>"{last}"')
    assert [(entry.payload, entry.severity) for entry in newer] == [
        ("[process] hello (1)", "INFO"),
        ("WARN: something odd", "ERROR"),
    ]
    assert read(f'timestamp>"{newer[-1].timestamp.isoformat()}"') == []
    assert [entry.payload for entry in read("severity>=ERROR")] == ["WARN: something odd"]

    fake_google.finish("logged", "SUCCEEDED", lines=["Done"])
    newest = read(order_by=cloud_logging.DESCENDING, page_size=2, max_results=1)
    assert [entry.payload for entry in newest] == ["Done"]
    agent = list(
        logging_client.list_entries(
            resource_names=[f"projects/{PROJECT}"],
            filter_=f'logName="projects/{PROJECT}/logs/batch_agent_logs" '
            f'labels.job_uid="{created.uid}"',
        )
    )
    assert len(agent) == 1


def test_logs_over_plain_rest_json(
    google_adc: GoogleCloudFake, rest_client: batch_v1.BatchServiceClient
) -> None:
    """The JSON itself: enum names, camelCase, and no nextPageToken on the last page."""
    google_adc.plan_for = lambda job: default_plan(0.0, state="FAILED")
    google_adc.lines_for = lambda job: ["out", stderr("err")]
    created = rest_client.create_job(parent=PARENT, job_id="plain", job=head_job())
    credentials, project = google.auth.default(
        scopes=["https://www.googleapis.com/auth/logging.read"]
    )
    session = AuthorizedSession(credentials)
    url = f"{google_adc.rest_endpoint}/v2/entries:list"
    body = {
        "resourceNames": [f"projects/{project}"],
        "filter": task_log_filter(created.uid),
        "orderBy": "timestamp desc",
        "pageSize": 1,
    }

    first = session.post(url, json=body, timeout=5).json()
    assert [(e["textPayload"], e["severity"]) for e in first["entries"]] == [("err", "ERROR")]
    entry = first["entries"][0]
    assert entry["logName"] == f"projects/{PROJECT}/logs/batch_task_logs"
    assert entry["resource"]["type"] == "batch.googleapis.com/Job"
    assert entry["labels"]["job_uid"] == created.uid
    assert entry["timestamp"].endswith("Z")
    second = session.post(url, json=body | {"pageToken": first["nextPageToken"]}, timeout=5).json()
    assert [e["textPayload"] for e in second["entries"]] == ["out"]
    assert "nextPageToken" not in second

    bad = session.post(url, json=body | {"filter": "colour=red"}, timeout=5)
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert "colour" in error["message"]
    assert google_adc.authorizations[f"Bearer {ACCESS_TOKEN}"] == google_adc.calls.total()


def test_logs_over_grpc_gapic_client(
    fake_google: GoogleCloudFake,
    grpc_client: batch_v1.BatchServiceClient,
    grpc_channel: grpc.Channel,
) -> None:
    fake_google.plan_for = lambda job: default_plan(0.0, exit_code=1, state="FAILED")
    fake_google.lines_for = lambda job: ["out", stderr("err")]
    created = grpc_client.create_job(parent=PARENT, job_id="grpc-logs", job=head_job())
    client = LoggingServiceV2Client(transport=LoggingServiceV2GrpcTransport(channel=grpc_channel))

    entries = list(
        client.list_log_entries(
            request={
                "resource_names": [f"projects/{PROJECT}"],
                "filter": task_log_filter(created.uid),
                "order_by": "timestamp asc",
                "page_size": 1,
            }
        )
    )
    assert [(e.text_payload, LogSeverity.Name(e.severity)) for e in entries] == [
        ("out", "INFO"),
        ("err", "ERROR"),
    ]
    assert fake_google.calls["ListLogEntries"] == 2  # two pages
    # The read moved the job on, as a GetJob would.
    assert fake_google.job("grpc-logs").state == "FAILED"
    with pytest.raises(exceptions.InvalidArgument, match="unsupported field"):
        client.list_log_entries(
            request={"resource_names": [f"projects/{PROJECT}"], "filter": "bogus=1"}, **NO_RETRY
        )


def test_no_logs_without_cloud_logging_policy(
    fake_google: GoogleCloudFake,
    rest_client: batch_v1.BatchServiceClient,
    logging_client: cloud_logging.Client,
) -> None:
    fake_google.plan_for = lambda job: default_plan(0.0)
    created = rest_client.create_job(parent=PARENT, job_id="silent", job=head_job(logs=False))
    assert rest_client.get_job(name=created.name).status.state == State.SUCCEEDED
    entries = logging_client.list_entries(
        resource_names=[f"projects/{PROJECT}"], filter_=f'labels.job_uid="{created.uid}"'
    )
    assert list(entries) == []
    assert fake_google.log_entries == []


# --- counters, injected errors, auth -------------------------------------------------------


def test_call_counters_and_injected_errors(
    fake_google: GoogleCloudFake, rest_client: batch_v1.BatchServiceClient
) -> None:
    created = rest_client.create_job(parent=PARENT, job_id="counted", job=head_job())
    rest_client.get_job(name=created.name)
    rest_client.get_job(name=created.name)
    list(rest_client.list_jobs(parent=PARENT))

    fake_google.fail_next("GetJob", "UNAVAILABLE")
    with pytest.raises(exceptions.ServiceUnavailable):
        rest_client.get_job(name=created.name, **NO_RETRY)
    fake_google.fail_next("GetJob", "UNAVAILABLE")
    quick = Retry(initial=0.01, maximum=0.02, timeout=2)
    assert rest_client.get_job(name=created.name, retry=quick).name == created.name

    assert fake_google.calls == {"CreateJob": 1, "GetJob": 5, "ListJobs": 1}


def test_require_auth_accepts_adc_tokens_only(
    google_adc: GoogleCloudFake,
    rest_client: batch_v1.BatchServiceClient,
    grpc_client: batch_v1.BatchServiceClient,
) -> None:
    google_adc.require_auth = True
    with pytest.raises(exceptions.NotFound):
        rest_client.get_job(name=f"{PARENT}/jobs/any", **NO_RETRY)
    # A plaintext channel carries no credentials at all.
    with pytest.raises(exceptions.Unauthenticated):
        grpc_client.get_job(name=f"{PARENT}/jobs/any", **NO_RETRY)
    assert google_adc.authorizations == {f"Bearer {ACCESS_TOKEN}": 1, "": 1}


# --- filter language -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('a="1" AND b="2" OR b="3"', [True, True, False, False]),
        ('(a="1" AND b="2") OR b="3"', [True, True, False, True]),
        ('a="1" b="3"', [False, True, False, False]),
        ('NOT a="1"', [False, False, True, True]),
        ('b>="3"', [False, True, False, True]),
        ('a:"1"', [True, True, False, False]),
        ("", [True, True, True, True]),
    ],
)
def test_filter_precedence_and_operators(text: str, expected: list[bool]) -> None:
    rows = [{"a": "1", "b": "2"}, {"a": "1", "b": "3"}, {"a": "2", "b": "2"}, {"a": "2", "b": "3"}]
    predicate = compile_filter(text, lambda name: ((lambda row: row[name]), str))
    assert [predicate(row) for row in rows] == expected
