"""AWS Batch and CloudWatch Logs stand-in: moto's server inside the test process.

The product reaches it over a real HTTP connection with ordinary boto3 clients that are
given an ``endpoint_url`` and take dummy credentials and the region from the environment
(see ``AwsBatchFake.env()``). Nothing of boto3 is patched on the client side.

Written for moto 5.2.5 (pin ``moto[server,batch,logs]==5.2.5``): "controlled mode" below
replaces private parts of moto's Batch models (``BatchSimpleBackend._mark_job_as_finished``,
``Job._container_details``, ``Job._get_container_property``, ``Job.describe_short``,
``Job.terminate``, ``Job._mark_stopped``, ``Job._start_attempt``, ``Job._stream_name``,
``Job._log_backend``, ``ManagedState._status``/``_time_progressed``, ``BatchBackend._jobs``,
``BatchResponse.listjobs``/``describejobs``). A newer moto may rename them; the patch
checks they exist and fails loudly if not.

Controlled mode, in short:

* Jobs never run. A job walks SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING, one
  step per ``step_seconds`` of wall time (default 0.15 s), computed whenever its status is
  read, and then stays RUNNING until a test ends it with ``finish()`` or
  ``fail_infrastructure()``, or the product calls TerminateJob/CancelJob.
  ``step_seconds = None`` freezes jobs where they are (a "stuck in the queue" case).
* As on AWS: ``container.logStreamName`` and ``startedAt`` appear once the job is RUNNING;
  TerminateJob ends a queued or running job FAILED with ``statusReason`` = the reason sent;
  ListJobs without ``jobStatus`` and without ``filters`` returns RUNNING jobs only, and pages
  with ``maxResults``/``nextToken`` (100 per page with filters, 1000 otherwise); DescribeJobs
  refuses more than 100 ids; SubmitJob checks the job name's form.
* Lost answers (``lose_answer``): a call is carried out but its caller sees a 500 or a
  late answer, as when a network or AWS fails after the job was made; ``before_answer``
  runs a test's code while a call waits for its answer; ``list_lag`` keeps new jobs out of
  ListJobs for a while, as AWS's eventual consistency may.
* Fixed moto quirks: DescribeJobs shows ``container.exitCode``, and no longer appends one more
  ``AWS_BATCH_JOB_ID`` to ``container.environment`` on every call.

Standard setup (``AwsBatchFake.setup()``, redone by every ``reset()``), in region
``eu-west-1`` of account ``123456789012``:

* job queue ``head-queue`` (ENABLED) on the UNMANAGED compute environment ``head-ce``, whose
  service role is ``batch-service-role``;
* job definition ``nf-head`` (container, image ``nextflow/nextflow``, 1 vCPU, 2048 MiB).

The product must submit head jobs with ``jobQueue="head-queue"`` and
``jobDefinition="nf-head"`` (name, ``name:revision`` or ARN) in that region. Console lines
written by the test hooks land in log group ``/aws/batch/job``, on the stream named by
``container.logStreamName`` (``nf-head/default/<jobId>``).

Usage in a test module (tests/conftest.py loads this module's fixtures)::

    def test_one_poll_describes_the_job(aws):
        ...  # run the product against aws.endpoint_url, then end the job:
        aws.finish(job_id, 0, ["done"])
        assert aws.calls["DescribeJobs"] == 1
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import cache
from typing import Any
from urllib.parse import parse_qs

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError, UnknownServiceError
from moto.batch.exceptions import ClientException
from moto.batch.models import Job, batch_backends
from moto.batch.responses import BatchResponse
from moto.batch_simple.models import BatchSimpleBackend
from moto.core.models import default_user_config
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.server import ThreadedMotoServer

ACCOUNT_ID = "123456789012"
REGION = "eu-west-1"
SERVICE_ROLE = "batch-service-role"
COMPUTE_ENVIRONMENT = "head-ce"
HEAD_QUEUE = "head-queue"
HEAD_JOB_DEFINITION = "nf-head"
HEAD_IMAGE = "nextflow/nextflow"
LOG_GROUP = "/aws/batch/job"
ESSENTIAL_CONTAINER_EXITED = "Essential container in task exited"
DEFAULT_STEP_SECONDS = 0.1

_DUMMY_KEY = "testing"
_QUEUED = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING")
_WALK = (*_QUEUED, "RUNNING")
# SubmitJob's documented rule for jobName: up to 128 characters, letters, digits, - and _,
# starting with a letter or digit.
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_DESCRIBE_JOBS_MAX = 100
_LIST_JOBS_PAGE_WITH_FILTERS = 100
_LIST_JOBS_PAGE = 1000


# --------------------------------------------------------------------------------------
# Controlled mode: process-wide changes to moto's Batch models
# --------------------------------------------------------------------------------------


class _Progress:
    """How fast queued jobs walk to RUNNING; shared by every job in the process."""

    step_seconds: float | None = DEFAULT_STEP_SECONDS
    list_lag_seconds: float = 0.0  # ListJobs shows a job only this long after it is made


_patched = False
_patch_lock = threading.Lock()


def _text(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _started(job: Job) -> bool:
    return getattr(job, "_fake_started", False)


def _start(job: Job) -> None:
    """What AWS does when the container starts: start time, attempt, log stream name."""
    if _started(job):
        return
    job._fake_started = True
    job.job_started_at = datetime.now()
    job.log_stream_name = job._stream_name
    job._start_attempt()


def _read_status(job: Job) -> str:
    status = _text(job._status)
    step = _Progress.step_seconds
    if status in _QUEUED and step is not None:
        # Catch up on every step that is due, so a slow poller still sees the job
        # reach RUNNING after 4 steps of wall time rather than after 4 reads.
        now = datetime.now()
        delta = timedelta(seconds=step)
        while status in _QUEUED and now - job._time_progressed >= delta:
            status = _WALK[_WALK.index(status) + 1]
            job._time_progressed += delta
        job._status = status
    if status == "RUNNING":
        _start(job)
    return status


def _install_controlled_mode() -> None:
    global _patched
    with _patch_lock:
        if _patched:
            return
        _check_moto_internals()

        default_user_config["batch"] = {"use_docker": False}

        def register(self: BatchSimpleBackend, include_start_attempt: bool, job: Job) -> None:
            # Replaces "mark as finished at once": keep the job, let time and tests move it.
            self.backend._jobs[job.job_id] = job

        BatchSimpleBackend._mark_job_as_finished = register

        original_submit = BatchSimpleBackend.submit_job

        def submit_job(self: BatchSimpleBackend, job_name: str, *args: Any, **kwargs: Any):
            if not isinstance(job_name, str) or not _JOB_NAME.match(job_name):
                raise ClientException(
                    "jobName must be 1-128 letters, digits, hyphens or underscores,"
                    f" starting with a letter or digit: {job_name!r}"
                )
            return original_submit(self, job_name, *args, **kwargs)

        BatchSimpleBackend.submit_job = submit_job

        Job.status = property(_read_status, ManagedState.status.fset)

        def terminate(self: Job, reason: str) -> None:
            # AWS: STARTING/RUNNING jobs end FAILED, earlier ones are cancelled (FAILED too);
            # an ended job keeps its status and reason.
            if self.job_stopped:
                return
            self.stop = True
            self.job_stopped_reason = reason
            self._mark_stopped(success=False)

        Job.terminate = terminate

        original_short = Job.describe_short

        def describe_short(self: Job) -> dict[str, Any]:
            result = original_short(self)
            if not _started(self):
                result.pop("startedAt", None)
            return result

        Job.describe_short = describe_short

        original_details = Job._container_details

        def container_details(self: Job) -> dict[str, Any]:
            details = original_details(self)
            if self.exit_code is not None:
                details["exitCode"] = self.exit_code
            return details

        Job._container_details = container_details

        original_property = Job._get_container_property

        def container_property(self: Job, name: str, default: Any) -> Any:
            if name != "environment":
                return original_property(self, name, default)
            # moto appends to the override list itself, so every describe grew it by one.
            definition = self.job_definition.container_properties or {}
            merged = {e["name"]: e["value"] for e in self.container_overrides.get(name, [])}
            for entry in definition.get(name, []):
                merged.setdefault(entry["name"], entry["value"])
            merged["AWS_BATCH_JOB_ID"] = self.job_id
            return [{"name": key, "value": value} for key, value in merged.items()]

        Job._get_container_property = container_property

        original_describe = BatchResponse.describejobs

        def describejobs(self: BatchResponse) -> str:
            ids = self._get_param("jobs") or []
            if len(ids) > _DESCRIBE_JOBS_MAX:
                raise ClientException(
                    f"jobs: at most {_DESCRIBE_JOBS_MAX} job IDs per request, got {len(ids)}"
                )
            if not ids:
                return json.dumps({"jobs": []})
            return original_describe(self)

        BatchResponse.describejobs = describejobs
        BatchResponse.listjobs = _list_jobs
        _patched = True


def _list_jobs(self: BatchResponse) -> str:
    status = self._get_param("jobStatus")
    filters = self._get_param("filters") or None
    if status is None and filters is None:
        status = "RUNNING"  # AWS's default; moto would return every status
    jobs = self.batch_backend.list_jobs(
        job_queue_name=self._get_param("jobQueue"),
        array_job_id=self._get_param("arrayJobId"),
        job_status=status,
        filters=filters,
    )
    if _Progress.list_lag_seconds:  # eventual consistency: new jobs not listed yet
        seen_before = datetime.now() - timedelta(seconds=_Progress.list_lag_seconds)
        jobs = [job for job in jobs if job.job_created_at <= seen_before]
    if filters is not None:
        jobs = sorted(jobs, key=lambda job: job.job_created_at, reverse=True)
    cap = _LIST_JOBS_PAGE_WITH_FILTERS if filters is not None else _LIST_JOBS_PAGE
    page = min(self._get_param("maxResults") or cap, cap)
    start = _decode_token(self._get_param("nextToken"))
    result: dict[str, Any] = {
        "jobSummaryList": [job.describe_short() for job in jobs[start : start + page]]
    }
    if start + page < len(jobs):
        result["nextToken"] = base64.urlsafe_b64encode(f"jobs:{start + page}".encode()).decode()
    return json.dumps(result)


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        prefix, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if prefix != "jobs":
            raise ValueError(prefix)
        return int(offset)
    except ValueError as error:
        raise ClientException(f"Invalid nextToken: {token}") from error


def _check_moto_internals() -> None:
    needed = {
        BatchSimpleBackend: ("_mark_job_as_finished", "submit_job"),
        Job: (
            "_container_details",
            "_get_container_property",
            "_mark_stopped",
            "_start_attempt",
            "describe_short",
            "terminate",
        ),
        BatchResponse: ("describejobs", "listjobs", "batch_backend", "_get_param"),
        ManagedState: ("status",),
    }
    missing = [
        f"{owner.__name__}.{name}"
        for owner, names in needed.items()
        for name in names
        if not hasattr(owner, name)
    ]
    if missing:
        raise RuntimeError(
            "tests/fakes/aws.py is written for moto 5.2.5; this moto lacks " + ", ".join(missing)
        )


# --------------------------------------------------------------------------------------
# Server-side request log
# --------------------------------------------------------------------------------------

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,]*/[^/,]*/[^/,]*/([^/,]*)/")
# The access key id a SigV4 request was signed with.
_ACCESS_KEY_ID = re.compile(r"Credential=([^/,\s]+)/")
_LABEL = re.compile(r"\\\{[^}]*\\\}")


@cache
def _rest_routes(service: str) -> tuple[tuple[str, re.Pattern[str], str], ...]:
    """(HTTP method, path pattern, operation) of a REST service, literal paths first."""
    try:
        model = botocore.session.get_session().get_service_model(service)
    except UnknownServiceError:
        return ()
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        template = http["requestUri"].split("?", 1)[0]
        pattern = _LABEL.sub(
            lambda label: ".+" if label.group().endswith("+\\}") else "[^/]+",
            re.escape(template),
        )
        routes.append((template.count("{"), http["method"], re.compile(f"^{pattern}/?$"), name))
    routes.sort(key=lambda route: route[0])
    return tuple((method, pattern, name) for _, method, pattern, name in routes)


def _operation(environ: dict[str, Any], body: bytes) -> str:
    """The AWS operation a request asks for, as the service's own API names it."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:  # JSON protocol (CloudWatch Logs): "Logs_20140328.GetLogEvents"
        return target.rsplit(".", 1)[-1]
    if body and b"Action=" in body:  # query protocol (IAM, STS)
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = scope.group(1) if scope else "unknown"
    method = environ.get("REQUEST_METHOD", "GET")
    raw = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
    path = raw.split("?", 1)[0]
    for route_method, pattern, name in _rest_routes(service):  # REST (Batch: /v1/describejobs)
        if route_method == method and pattern.match(path):
            return name
    return f"{service}:{method} {path}"


@dataclass(frozen=True)
class _Answer:
    """What becomes of the answer to one call that was carried out: ``"5xx"`` replaces it
    with a 500 ServerException, ``"late"`` sends it after ``seconds`` (after the caller's
    read timeout), ``"hook"`` calls ``hook()`` first and then sends it."""

    kind: str
    seconds: float = 0.0
    hook: Callable[[], None] | None = None


class _RequestLog:
    """WSGI layer in front of moto: counts what the server received, by operation, and
    applies the answers a test has planned."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.calls: Counter[str] = Counter()
        self.submitted: list[dict[str, Any]] = []
        self.signers: list[tuple[str, str | None]] = []
        self.answers: dict[str, list[_Answer]] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        answer = None
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            body = self._take_body(environ)
            operation = _operation(environ, body)
            signer = _ACCESS_KEY_ID.search(environ.get("HTTP_AUTHORIZATION", ""))
            with self._lock:
                self.calls[operation] += 1
                self.signers.append((operation, signer.group(1) if signer else None))
                if operation == "SubmitJob":
                    self.submitted.append(json.loads(body or b"{}"))
                planned = self.answers.get(operation)
                answer = planned.pop(0) if planned else None
        if answer is None:
            return self.app(environ, start_response)
        return self._answer(answer, environ, start_response)

    def _answer(
        self, answer: _Answer, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Any:
        captured: list[Any] = []

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured[:] = [status, headers]

        body = b"".join(self.app(environ, keep))  # the call is carried out in any case
        if answer.kind == "5xx":
            error = {"__type": "ServerException", "message": "Internal server error"}
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "application/json"), ("x-amzn-ErrorType", "ServerException")],
            )
            return [json.dumps(error).encode()]
        if answer.kind == "late":
            time.sleep(answer.seconds)
        elif answer.hook is not None:
            answer.hook()
        start_response(*captured)
        return [body]

    @staticmethod
    def _take_body(environ: dict[str, Any]) -> bytes:
        """Read the body and put an equal stream back for moto to read."""
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        if length:
            body = stream.read(int(length))
        elif environ.get("wsgi.input_terminated"):
            body = stream.read()
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return body


# --------------------------------------------------------------------------------------
# The stand-in
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadSetup:
    """Names and ARNs of the standard setup, the ones the product refers to."""

    region: str
    role_arn: str
    compute_environment: str
    compute_environment_arn: str
    job_queue: str
    job_queue_arn: str
    job_definition: str
    job_definition_arn: str


@dataclass(frozen=True)
class FakeJob:
    """One job as the stand-in holds it, read in-process (no request is made)."""

    job_id: str
    name: str
    status: str
    status_reason: str | None
    exit_code: int | None
    tags: dict[str, str]
    queue: str
    job_definition: str
    log_stream: str | None
    region: str
    account: str
    created_at: datetime


class AwsBatchFake:
    """moto's server on 127.0.0.1 with Batch in controlled mode, plus test hooks.

    moto's state is process-wide, so one instance serves a whole test session; ``reset()``
    wipes everything between tests and redoes the standard setup.
    """

    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self.head: HeadSetup | None = None
        self._server: ThreadedMotoServer | None = None
        self._log: _RequestLog | None = None
        self._last_timestamp = 0
        self._clients: dict[tuple[str, str], Any] = {}

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        _install_controlled_mode()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # verbose=False keeps it
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        # Put the request log between werkzeug and moto's dispatcher before any request.
        wsgi_server = self._server._server
        self._log = _RequestLog(wsgi_server.app)
        wsgi_server.app = self._log

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
            self._clients.clear()

    def reset(self) -> HeadSetup:
        """Wipe every resource in the stand-in, then redo the standard setup."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, data=b"", timeout=10) as response:
            response.read()
        _Progress.step_seconds = DEFAULT_STEP_SECONDS
        _Progress.list_lag_seconds = 0.0
        self._request_log.answers.clear()
        self._last_timestamp = 0
        self.head = self.setup(self.region)
        self.calls.clear()
        self.submitted.clear()
        self._request_log.signers.clear()
        return self.head

    # -- how to reach it ---------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """Environment a worker process needs: dummy keys and the region.

        The endpoint is not in it: the product passes ``endpoint_url`` itself. The config
        and credential files point at an empty file so a developer's ~/.aws cannot leak in,
        and instance metadata lookups are off so a missing key fails fast.
        """
        return {
            "AWS_ACCESS_KEY_ID": _DUMMY_KEY,
            "AWS_SECRET_ACCESS_KEY": _DUMMY_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client on the stand-in, with its own dummy keys (for setup and checks).

        Clients are kept: building one costs about 0.1 s, and they outlive ``reset()``.
        """
        key = (service, region or self.region)
        if key not in self._clients:
            session = boto3.session.Session(
                aws_access_key_id=_DUMMY_KEY,
                aws_secret_access_key=_DUMMY_KEY,
                region_name=key[1],
            )
            self._clients[key] = session.client(service, endpoint_url=self.endpoint_url)
        return self._clients[key]

    # -- what it received --------------------------------------------------------------

    @property
    def calls(self) -> Counter[str]:
        """Requests received, by operation name ("DescribeJobs", "GetLogEvents", ...)."""
        return self._request_log.calls

    def signed_by(self, operation: str) -> list[str | None]:
        """The access key id each ``operation`` call received was signed with, in order
        (as AWS reads it from the SigV4 ``Authorization`` header)."""
        return [key for name, key in self._request_log.signers if name == operation]

    @property
    def submitted(self) -> list[dict[str, Any]]:
        """The JSON bodies of every SubmitJob request received, in order."""
        return self._request_log.submitted

    # -- lost and held answers -----------------------------------------------------------

    def lose_answer(self, operation: str, *, late_by: float | None = None) -> None:
        """Carry out the next ``operation`` call, but let its caller never see the answer:
        a 500 ServerException instead, or (``late_by``) the answer that many seconds late,
        after the caller's read timeout."""
        kind = "5xx" if late_by is None else "late"
        with self._request_log._lock:
            answers = self._request_log.answers.setdefault(operation, [])
            answers.append(_Answer(kind, seconds=late_by or 0.0))

    def before_answer(self, operation: str, hook: Callable[[], None]) -> None:
        """Carry out the next ``operation`` call, then run ``hook()`` (in the server, while
        the caller waits), then answer."""
        with self._request_log._lock:
            self._request_log.answers.setdefault(operation, []).append(_Answer("hook", hook=hook))

    @property
    def list_lag(self) -> float:
        """Seconds a new job stays out of ListJobs (its eventual consistency)."""
        return _Progress.list_lag_seconds

    @list_lag.setter
    def list_lag(self, seconds: float) -> None:
        _Progress.list_lag_seconds = seconds

    @property
    def _request_log(self) -> _RequestLog:
        if self._log is None:
            raise RuntimeError("the stand-in is not started")
        return self._log

    # -- standard setup ----------------------------------------------------------------

    def setup(self, region: str = REGION) -> HeadSetup:
        """Service role, UNMANAGED compute environment, head queue and job definition."""
        iam = self.client("iam", region)
        batch = self.client("batch", region)
        try:
            role_arn = iam.create_role(RoleName=SERVICE_ROLE, AssumeRolePolicyDocument="{}")[
                "Role"
            ]["Arn"]
        except ClientError as error:  # IAM is global: a second region finds the role
            if error.response["Error"]["Code"] != "EntityAlreadyExists":
                raise
            role_arn = iam.get_role(RoleName=SERVICE_ROLE)["Role"]["Arn"]
        environment = batch.create_compute_environment(
            computeEnvironmentName=COMPUTE_ENVIRONMENT,
            type="UNMANAGED",
            state="ENABLED",
            serviceRole=role_arn,
        )
        queue = batch.create_job_queue(
            jobQueueName=HEAD_QUEUE,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[
                {"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}
            ],
        )
        definition = batch.register_job_definition(
            jobDefinitionName=HEAD_JOB_DEFINITION,
            type="container",
            containerProperties={
                "image": HEAD_IMAGE,
                "resourceRequirements": [
                    {"type": "VCPU", "value": "1"},
                    {"type": "MEMORY", "value": "2048"},
                ],
            },
        )
        return HeadSetup(
            region=region,
            role_arn=role_arn,
            compute_environment=COMPUTE_ENVIRONMENT,
            compute_environment_arn=environment["computeEnvironmentArn"],
            job_queue=HEAD_QUEUE,
            job_queue_arn=queue["jobQueueArn"],
            job_definition=HEAD_JOB_DEFINITION,
            job_definition_arn=definition["jobDefinitionArn"],
        )

    # -- job progression ---------------------------------------------------------------

    @property
    def step_seconds(self) -> float | None:
        """Seconds per queue step SUBMITTED..STARTING -> RUNNING; None holds jobs still."""
        return _Progress.step_seconds

    @step_seconds.setter
    def step_seconds(self, value: float | None) -> None:
        _Progress.step_seconds = value

    # -- test hooks --------------------------------------------------------------------

    def jobs(self) -> list[FakeJob]:
        """Every job in the stand-in, oldest first."""
        found = [self._describe(job, account, region) for job, account, region in _all_jobs()]
        return sorted(found, key=lambda job: job.created_at)

    def job(self, job_id: str) -> FakeJob:
        job, account, region = self._find(job_id)
        return self._describe(job, account, region)

    def wait_until(self, job_id: str, status: str, timeout: float = 5.0) -> FakeJob:
        """Wait, in-process, until the job has ``status``; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.job(job_id)
            if current.status == status:
                return current
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is {current.status}, not {status}")
            time.sleep(0.02)

    def log(self, job_id: str, lines: Iterable[str]) -> None:
        """Append console lines to the job's stream; a queued job is moved to RUNNING."""
        job, _, _ = self._find(job_id)
        if not job.job_stopped:
            self._run(job)
        elif not _started(job):
            raise RuntimeError(f"job {job_id} ended before it ran; it has no log stream")
        self._write(job, list(lines))

    def finish(self, job_id: str, exit_code: int, lines: Iterable[str] = ()) -> None:
        """End the job as its container would: last lines, exit code, SUCCEEDED or FAILED.

        A job still queued is moved to RUNNING first (it gets its log stream name).
        """
        job = self._running(job_id)
        self._write(job, list(lines))
        job.exit_code = exit_code
        reason = None if exit_code == 0 else ESSENTIAL_CONTAINER_EXITED
        if reason is not None:
            job.job_stopped_reason = reason
        if job.latest_attempt is not None:
            job.latest_attempt["container"]["exitCode"] = exit_code
            if reason is not None:
                job.latest_attempt["statusReason"] = reason
        job._mark_stopped(success=exit_code == 0)

    def fail_infrastructure(self, job_id: str, reason: str) -> None:
        """End the job FAILED for a reason outside the container: no exit code.

        For example ``"CannotPullContainerError: ..."`` or the Spot reclamation reason
        ``"Host EC2 (instance i-0123456789abcdef0) terminated."``. The job keeps the state
        it had reached: a queued job gets no log stream, a running one keeps its stream.
        """
        job, _, _ = self._find(job_id)
        if job.job_stopped:
            raise RuntimeError(f"job {job_id} has already ended ({_text(job.status)})")
        job.job_stopped_reason = reason
        if job.latest_attempt is not None:
            job.latest_attempt["statusReason"] = reason
        job._mark_stopped(success=False)

    # -- internals ---------------------------------------------------------------------

    def _find(self, job_id: str) -> tuple[Job, str, str]:
        for job, account, region in _all_jobs():
            if job.job_id == job_id or job.arn == job_id:
                return job, account, region
        raise KeyError(f"no job {job_id} in the stand-in")

    def _running(self, job_id: str) -> Job:
        job, _, _ = self._find(job_id)
        if job.job_stopped:
            raise RuntimeError(f"job {job_id} has already ended ({_text(job.status)})")
        self._run(job)
        return job

    @staticmethod
    def _run(job: Job) -> None:
        if _read_status(job) in _QUEUED:
            job._status = "RUNNING"
        _start(job)

    def _write(self, job: Job, lines: list[str]) -> None:
        if not lines:
            return
        logs = job._log_backend
        logs.ensure_log_group(LOG_GROUP)
        logs.ensure_log_stream(LOG_GROUP, job._stream_name)
        events = []
        for line in lines:
            # Strictly increasing, so the order of lines survives any reader's sort.
            self._last_timestamp = max(int(time.time() * 1000), self._last_timestamp + 1)
            events.append({"timestamp": self._last_timestamp, "message": line})
        logs.put_log_events(LOG_GROUP, job._stream_name, events)

    @staticmethod
    def _describe(job: Job, account: str, region: str) -> FakeJob:
        status = _read_status(job)
        return FakeJob(
            job_id=job.job_id,
            name=job.job_name,
            status=status,
            status_reason=job.job_stopped_reason,
            exit_code=job.exit_code,
            tags=dict(job.backend.list_tags_for_resource(job.arn)),
            queue=job.job_queue.name,
            job_definition=job.job_definition.name,
            log_stream=job.log_stream_name,
            region=region,
            account=account,
            created_at=job.job_created_at,
        )


def _all_jobs() -> Iterator[tuple[Job, str, str]]:
    for account, regions in list(batch_backends.items()):
        for region, backend in list(regions.items()):
            for job in list(backend._jobs.values()):
                yield job, account, region


# --------------------------------------------------------------------------------------
# pytest fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def aws_server() -> Iterator[AwsBatchFake]:
    """The one stand-in of the session (moto's backends are process-wide)."""
    fake = AwsBatchFake()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def aws(aws_server: AwsBatchFake, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsBatchFake]:
    """The stand-in, wiped and set up afresh, with the dummy AWS environment in place.

    Endpoint variables are removed: the product must pass the endpoint itself.
    """
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_BATCH",
        "AWS_ENDPOINT_URL_LOGS",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in aws_server.env().items():
        monkeypatch.setenv(name, value)
    aws_server.reset()
    yield aws_server
    aws_server.step_seconds = DEFAULT_STEP_SECONDS
    aws_server.list_lag = 0.0
