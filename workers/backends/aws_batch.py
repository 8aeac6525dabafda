"""Head jobs on AWS Batch: one job per run in the compute environment's head queue.

The job is named after the run, so a retried submit finds it (``ListJobs`` with a
``JOB_NAME`` filter, which returns jobs in every status) instead of starting a second.
Polling asks ``DescribeJobs`` for 100 jobs a call. The console log is read from
CloudWatch Logs, the stream Batch names on the job. Credentials are those the compute
environment names (an access key, and a role assumed with it when they give one), else
boto3's own chain (environment, profile, instance or task role).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from wes_gateway.domain import compute_envs, run_outputs
from wes_gateway.domain.launch import RunSnapshot
from wes_gateway.domain.states import BackendStatus
from wes_gateway.infra import metrics
from workers.backends import head_job
from workers.backends.base import (
    Backend,
    JobReport,
    OutputsQuery,
    Submission,
    SubmitError,
    SubmitUnknown,
    no_claim,
)

DESCRIBE_BATCH = 100  # DescribeJobs takes at most 100 ids
STOP_REASON = "Cancelled through wes-gateway"
RUN_TAG = "wes-gateway-run-id"

# Batch status → ours, for jobs that have not ended.
_LIVE = {
    "SUBMITTED": BackendStatus.PENDING,
    "PENDING": BackendStatus.PENDING,
    "RUNNABLE": BackendStatus.PENDING,
    "STARTING": BackendStatus.PENDING,
    "RUNNING": BackendStatus.RUNNING,
}
# Words in a FAILED job's reasons that mean the infrastructure, not the workflow, failed.
# Checked in order; the first match decides.
FAILURE_REASONS: tuple[tuple[str, BackendStatus], ...] = (
    (STOP_REASON, BackendStatus.STOPPED),
    ("Host EC2", BackendStatus.PREEMPTED),  # "Host EC2 (instance i-…) terminated."
    ("Spot", BackendStatus.PREEMPTED),
    ("CannotPullContainer", BackendStatus.SYSTEM_FAILED),
    ("CannotStartContainer", BackendStatus.SYSTEM_FAILED),
    ("CannotCreateContainer", BackendStatus.SYSTEM_FAILED),
    ("CannotInspectContainer", BackendStatus.SYSTEM_FAILED),
    ("ResourceInitializationError", BackendStatus.SYSTEM_FAILED),
    ("OutOfMemory", BackendStatus.SYSTEM_FAILED),
    ("MISCONFIGURATION", BackendStatus.SYSTEM_FAILED),
)

# Job definitions this process registered or found, by name (one per image and role).
_definitions: dict[tuple[str | None, str, str], str] = {}
_definitions_lock = threading.Lock()


def report_of(job: Mapping[str, Any]) -> JobReport:
    """One DescribeJobs record as a JobReport (the one table from Batch to our states)."""
    status = job.get("status", "")
    if status in _LIVE:
        return JobReport(_LIVE[status])
    container = job.get("container") or {}
    exit_code = container.get("exitCode")
    if status == "SUCCEEDED":
        return JobReport(BackendStatus.SUCCEEDED, exit_code=0 if exit_code is None else exit_code)
    reasons = " | ".join(
        text for text in (job.get("statusReason"), container.get("reason")) if text
    )
    for marker, outcome in FAILURE_REASONS:
        if marker in reasons:
            return JobReport(outcome, exit_code=exit_code, message=reasons or None)
    return head_job.failed(exit_code, reasons, "AWS Batch")


def _count_call(model, **_kwargs) -> None:
    """Every AWS API call the backend makes, for /metrics (botocore's before-call event)."""
    metrics.cloud_call(compute_envs.AWS_BATCH, model.name)


def _missing_definition(exc: ClientError) -> bool:
    message = exc.response.get("Error", {}).get("Message", "")
    return "definition" in message.lower() and "not exist" in message.lower()


def _error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', str(exc))}"
    return str(exc)


def _refused(exc: Exception) -> bool:
    """Whether AWS answered the call with a definite refusal (a 4xx other than throttling):
    the job was not made and asking again will not change that. Anything else (a timeout,
    a lost connection, a 5xx) leaves the outcome unknown."""
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return 400 <= status < 500 and status != 429


def _submit_failure(exc: Exception) -> Exception:
    if _refused(exc):
        return SubmitError(f"AWS Batch refused the head job: {_error(exc)}")
    return SubmitUnknown(f"AWS Batch did not answer the head job's submission: {_error(exc)}")


# Temporary credentials of assumed roles, kept until shortly before they expire.
_assumed: dict[tuple, dict[str, Any]] = {}
_assumed_lock = threading.Lock()
_ROLE_MARGIN = timedelta(minutes=5)


def aws_session(keys: Any, region: str, endpoint: str | None) -> boto3.session.Session:
    """The boto3 session of a compute environment: its named credentials (an access key,
    and when they name a role, that role assumed through STS), else boto3's own chain."""
    if keys is None:
        return boto3.session.Session(region_name=region)
    session = boto3.session.Session(
        aws_access_key_id=keys.get("accessKey"),
        aws_secret_access_key=keys.get("secretKey"),
        region_name=region,
    )
    role = keys.get("assumeRoleArn")
    if not role:
        return session
    key = (keys.id, keys.get("accessKey"), role, endpoint)
    with _assumed_lock:
        temporary = _assumed.get(key)
    if temporary is None or temporary["Expiration"] - _ROLE_MARGIN < datetime.now(UTC):
        sts = session.client("sts", endpoint_url=endpoint, config=Config(region_name=region))
        answer = sts.assume_role(RoleArn=role, RoleSessionName=f"wes-gateway-{keys.id}"[:64])
        temporary = answer["Credentials"]
        with _assumed_lock:
            _assumed[key] = temporary
    return boto3.session.Session(
        aws_access_key_id=temporary["AccessKeyId"],
        aws_secret_access_key=temporary["SecretAccessKey"],
        aws_session_token=temporary["SessionToken"],
        region_name=region,
    )


class AwsBatchBackend(Backend):
    platform = compute_envs.AWS_BATCH

    def __init__(
        self, config: Mapping[str, Any], create_timeouts: tuple[float, float] = (5.0, 25.0)
    ) -> None:
        """``create_timeouts``: (connect, read) seconds for SubmitJob, within the settings'
        ``create_budget``."""
        self.config = dict(config)
        keys = self.config.pop("credentials", None)
        self.config.pop("credentialsId", None)
        self.region = self.config["region"]
        self.queue = self.config["headQueue"]
        self.log_group = self.config.get("logGroup") or compute_envs.DEFAULT_AWS_LOG_GROUP
        client_config = Config(
            region_name=self.region, retries={"mode": "standard", "max_attempts": 4}
        )
        endpoint = self.config.get("endpointUrl")
        session = aws_session(keys, self.region, endpoint)
        self.batch = session.client("batch", endpoint_url=endpoint, config=client_config)
        self.logs = session.client("logs", endpoint_url=endpoint, config=client_config)
        # S3 for listing a run's outdir; path-style on a private endpoint (no bucket DNS).
        s3_config = client_config.merge(Config(s3={"addressing_style": "path"}))
        self.s3 = session.client(
            "s3", endpoint_url=endpoint, config=s3_config if endpoint else client_config
        )
        # SubmitJob is not idempotent: a retry after a lost answer starts a second job. Its
        # client makes one attempt, bounded in time; a lost answer is settled by find().
        connect, read = create_timeouts
        create_config = Config(
            region_name=self.region,
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=connect,
            read_timeout=read,
        )
        self.create_client = session.client("batch", endpoint_url=endpoint, config=create_config)
        for client in (self.batch, self.logs, self.create_client, self.s3):
            client.meta.events.register("before-call", _count_call)

    @classmethod
    def from_settings(cls, settings: Any, config: dict[str, Any]) -> AwsBatchBackend:
        return cls(config, create_timeouts=settings.create_timeouts)

    @staticmethod
    def job_name(run_id: str) -> str:
        return f"nf-{run_id}"

    def _job_definition(self, *, cached: bool = True, run: RunSnapshot | None = None) -> str:
        """The head job definition: the configured one, or one registered for this image
        and role (found again by name, so it is registered once, not per run); the image
        is the run's Nextflow version when it asked for one and none is pinned."""
        if self.config.get("headJobDefinition"):
            return self.config["headJobDefinition"]
        image = head_job.image(self.config, run)
        role = self.config.get("headJobRole")
        key = (self.config.get("endpointUrl"), image, role or "")
        with _definitions_lock:
            if cached and key in _definitions:
                return _definitions[key]
        digest = hashlib.sha256(f"{image}|{role or ''}".encode()).hexdigest()[:12]
        name = f"wes-gateway-head-{digest}"
        found = self.batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")
        if not found.get("jobDefinitions"):
            cpus, memory = head_job.resources(self.config)
            properties: dict[str, Any] = {
                "image": image,
                "command": ["true"],
                "resourceRequirements": [
                    {"type": "VCPU", "value": str(cpus)},
                    {"type": "MEMORY", "value": str(memory)},
                ],
            }
            if role:
                properties["jobRoleArn"] = role
            self.batch.register_job_definition(
                jobDefinitionName=name, type="container", containerProperties=properties
            )
        with _definitions_lock:
            _definitions[key] = name
        return name

    def check(self) -> str | None:
        queues = [self.queue] + [
            q for q in (self.config.get("computeQueue"),) if q and q != self.queue
        ]
        try:
            found = self.batch.describe_job_queues(jobQueues=queues).get("jobQueues", [])
        except (ClientError, BotoCoreError) as exc:
            return f"AWS Batch in {self.region} did not answer: {_error(exc)}"
        by_name = {q["jobQueueName"]: q for q in found} | {q["jobQueueArn"]: q for q in found}
        for queue in queues:
            described = by_name.get(queue)
            if described is None:
                return f"no job queue {queue!r} in {self.region}"
            if described.get("state") != "ENABLED":
                return f"job queue {queue!r} is {described.get('state')}"
        return None

    def command(self, run: RunSnapshot) -> list[str]:
        return head_job.command(run)

    def submit(self, run: RunSnapshot, claim: Callable[[], None] = no_claim) -> Submission:
        head_job.check_pipeline(run, "AWS Batch")
        argv = self.command(run)
        try:
            existing = self.find(run)
            if existing is not None:
                return Submission(handle=existing, command=argv)
            environment = head_job.environment(self.platform, self.config, run)
            definition = self._job_definition(run=run)
        except (ClientError, BotoCoreError) as exc:
            raise _submit_failure(exc) from exc
        try:
            claim()
            response = self._submit_job(run, argv, environment, definition)
        except ClientError as exc:
            if not _missing_definition(exc) or self.config.get("headJobDefinition"):
                raise _submit_failure(exc) from exc
            # The definition this process registered was deregistered since (a refusal:
            # no job was made).
            try:
                definition = self._job_definition(cached=False, run=run)
                claim()
                response = self._submit_job(run, argv, environment, definition)
            except (ClientError, BotoCoreError) as again:
                raise _submit_failure(again) from again
        except BotoCoreError as exc:
            raise _submit_failure(exc) from exc
        return Submission(handle=response["jobId"], command=argv)

    def _submit_job(
        self, run: RunSnapshot, argv: list[str], environment: dict[str, str], definition: str
    ) -> dict[str, Any]:
        cpus, memory = head_job.resources(self.config, run)
        return self.create_client.submit_job(
            jobName=self.job_name(run.run_id),
            jobQueue=self.queue,
            jobDefinition=definition,
            containerOverrides={
                "command": head_job.container_command(argv),
                "environment": [
                    {"name": key, "value": value} for key, value in environment.items()
                ],
                "resourceRequirements": [
                    {"type": "VCPU", "value": str(cpus)},
                    {"type": "MEMORY", "value": str(memory)},
                ],
            },
            tags={RUN_TAG: run.run_id},
            propagateTags=False,
        )

    def find(self, run: RunSnapshot) -> str | None:
        newest: tuple[int, str] | None = None
        paginator = self.batch.get_paginator("list_jobs")
        pages = paginator.paginate(
            jobQueue=self.queue,
            filters=[{"name": "JOB_NAME", "values": [self.job_name(run.run_id)]}],
        )
        for page in pages:
            for job in page.get("jobSummaryList", []):
                created = int(job.get("createdAt") or 0)
                if newest is None or created > newest[0]:
                    newest = (created, job["jobId"])
        return None if newest is None else newest[1]

    def poll(self, handles: Sequence[str]) -> dict[str, JobReport]:
        reports: dict[str, JobReport] = {}
        unique = list(dict.fromkeys(handles))
        for start in range(0, len(unique), DESCRIBE_BATCH):
            chunk = unique[start : start + DESCRIBE_BATCH]
            jobs = self.batch.describe_jobs(jobs=chunk).get("jobs", [])
            for job in jobs:
                reports[job["jobId"]] = report_of(job)
        for handle in unique:
            reports.setdefault(
                handle,
                JobReport(BackendStatus.SYSTEM_FAILED, message="AWS Batch no longer knows the job"),
            )
        return reports

    def cancel(self, handle: str, *, force: bool = False) -> bool:
        """TerminateJob stops a job in any state (CancelJob would do nothing once it has
        started); Batch sends SIGTERM, then SIGKILL after the container's stop timeout."""
        try:
            self.batch.terminate_job(jobId=handle, reason=STOP_REASON)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ClientException",):
                return False
            raise
        return True

    def list_outputs(self, query: OutputsQuery) -> run_outputs.Listing | None:
        """The objects under an ``s3://`` outdir (ListObjectsV2 pages, in key order, read
        no further than the bound)."""
        if run_outputs.scheme_of(query.outdir) != "s3":
            return None
        bucket, prefix = run_outputs.bucket_and_prefix(query.outdir)
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)

        def found():
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"]
                    if not key.endswith("/"):  # a console's "folder" marker
                        location = f"s3://{bucket}/{key}"
                        yield run_outputs.OutputFile(key[len(prefix) :], location, item["Size"])

        return run_outputs.bounded(found(), query.limit)

    def _stream(self, handle: str) -> str | None:
        jobs = self.batch.describe_jobs(jobs=[handle]).get("jobs", [])
        if not jobs:
            return None
        job = jobs[0]
        stream = (job.get("container") or {}).get("logStreamName")
        for attempt in job.get("attempts") or ():
            stream = (attempt.get("container") or {}).get("logStreamName") or stream
        return stream

    def read_log(self, handle: str, cursor: str | None) -> tuple[list[str], str | None]:
        """Lines after ``cursor`` (a JSON of the stream and CloudWatch's forward token);
        a stream that does not exist yet is simply no lines."""
        state = json.loads(cursor) if cursor else {}
        stream = state.get("stream") or self._stream(handle)
        if not stream:
            return [], cursor
        token = state.get("token")
        lines: list[str] = []
        while True:
            kwargs: dict[str, Any] = {
                "logGroupName": self.log_group,
                "logStreamName": stream,
                "startFromHead": True,
            }
            if token:
                kwargs["nextToken"] = token
            try:
                page = self.logs.get_log_events(**kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    break
                raise
            lines += [event.get("message", "") for event in page.get("events", [])]
            following = page.get("nextForwardToken")
            if not following or following == token:
                break
            token = following
        return lines, json.dumps({"stream": stream, "token": token})
