"""Head jobs on Google Cloud Batch: one job per run, one task running the head container.

The job id is derived from the run id, so a retried create is answered ALREADY_EXISTS and
the job already made is used instead of a second one. Polling lists this service's
active jobs of the location in pages (a filter on its label and the live states) and
asks only for the jobs that left that list since; it does not make one call per run. The
console log is read from Cloud Logging (``batch_task_logs``, by the job's uid). The
clients use the REST transport (no gRPC channel can be inherited across a worker's
fork) and the service-account key the compute environment names, else Application
Default Credentials (a service account key, the metadata server or workload identity).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import google.auth
import requests
from google.api_core import exceptions as google_errors
from google.auth import exceptions as google_auth_errors
from google.auth.transport.requests import AuthorizedSession
from google.cloud import batch_v1
from google.cloud import logging as cloud_logging
from google.oauth2 import service_account as service_account_credentials

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

log = logging.getLogger(__name__)

CALL_TIMEOUT = 30.0  # seconds for one API call, retries included
LIST_PAGE_SIZE = 100
MANAGED_LABEL = ("managed-by", "wes-gateway")
RUN_LABEL = "wes-gateway-run"
TASK_LOG = "batch_task_logs"
LOG_PAGE_SIZE = 1000

State = batch_v1.JobStatus.State
# Job states in which the head job has not ended (the poll's list asks for these).
LIVE_STATES = ("QUEUED", "SCHEDULED", "RUNNING", "CANCELLATION_IN_PROGRESS")
_LIVE = {
    State.STATE_UNSPECIFIED: BackendStatus.PENDING,
    State.QUEUED: BackendStatus.PENDING,
    State.SCHEDULED: BackendStatus.PENDING,
    State.RUNNING: BackendStatus.RUNNING,
    State.CANCELLATION_IN_PROGRESS: BackendStatus.RUNNING,  # still stopping
}
# Exit codes Batch itself gives a task it could not finish (its troubleshooting guide).
BATCH_EXIT_CODES: dict[int, tuple[BackendStatus, str]] = {
    50001: (BackendStatus.PREEMPTED, "the VM was preempted"),
    50002: (BackendStatus.SYSTEM_FAILED, "the VM stopped reporting to Batch"),
    50003: (BackendStatus.SYSTEM_FAILED, "the VM rebooted while the task ran"),
    50004: (BackendStatus.SYSTEM_FAILED, "the VM and the task stopped responding"),
    50005: (BackendStatus.SYSTEM_FAILED, "the task ran past its maximum run duration"),
    50006: (BackendStatus.SYSTEM_FAILED, "the VM was recreated while the task ran"),
}

_clients: dict[tuple[str, str | None, str | None], Any] = {}
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
STORAGE_ENDPOINT = "https://storage.googleapis.com"
_clients_lock = threading.Lock()


def job_id(run_id: str) -> str:
    """A Batch job id for the run: lowercase, at most 63 characters, one per run id."""
    return "nf-" + run_id.encode().hex()


def service_account(keys: Any) -> service_account_credentials.Credentials | None:
    """The credentials of a compute environment's service-account key; None: ADC."""
    if keys is None:
        return None
    info = json.loads(keys.get("data") or "{}")
    return service_account_credentials.Credentials.from_service_account_info(
        info, scopes=[CLOUD_PLATFORM_SCOPE]
    )


def _client(kind: str, project: str, endpoint: str | None, keys: Any = None) -> Any:
    """One client per kind, project, endpoint and named credentials in this process,
    made on first use (the credentials' key fingerprint is part of the key, so updated
    credentials make a new client)."""
    fingerprint = None
    if keys is not None:
        data = (keys.get("data") or "").encode()
        fingerprint = f"{keys.id}:{hashlib.sha256(data).hexdigest()}"
    key = (f"{kind}:{project}", endpoint, fingerprint)
    with _clients_lock:
        if key not in _clients:
            options = {"api_endpoint": endpoint} if endpoint else None
            credentials = service_account(keys)
            if kind == "batch":
                _clients[key] = batch_v1.BatchServiceClient(
                    transport="rest", client_options=options, credentials=credentials
                )
            else:
                _clients[key] = cloud_logging.Client(
                    project=project,
                    _use_grpc=False,
                    client_options=options,
                    credentials=credentials,
                )
        return _clients[key]


def report_of(job: batch_v1.Job) -> JobReport:
    """One job as a JobReport: the one table from Batch states and exit codes to ours."""
    state = job.status.state
    if state in _LIVE:
        return JobReport(_LIVE[state])
    events = list(job.status.status_events)
    exit_code = next(
        (
            event.task_execution.exit_code
            for event in reversed(events)
            if "task_execution" in event and event.task_execution is not None
        ),
        None,
    )
    described = events[-1].description if events else ""
    if state == State.SUCCEEDED:
        return JobReport(BackendStatus.SUCCEEDED, exit_code=exit_code or 0)
    if state == State.CANCELLED:
        return JobReport(BackendStatus.STOPPED, exit_code=exit_code)
    if state == State.DELETION_IN_PROGRESS:
        return JobReport(BackendStatus.SYSTEM_FAILED, message="the Batch job is being deleted")
    if exit_code in BATCH_EXIT_CODES:
        outcome, why = BATCH_EXIT_CODES[exit_code]
        return JobReport(outcome, message=f"{why} (Batch exit code {exit_code}): {described}")
    return head_job.failed(exit_code, described, "Google Batch")


def _count(operation: str) -> None:
    metrics.cloud_call(compute_envs.GOOGLE_BATCH, operation)


def _error(exc: Exception) -> str:
    if isinstance(exc, google_errors.GoogleAPICallError):
        return f"{exc.code.name if hasattr(exc.code, 'name') else exc.code}: {exc.message}"
    return str(exc)


# What a call can raise when its answer is lost (as opposed to a refusal).
_LOST_ANSWER = (
    google_errors.GoogleAPICallError,
    google_errors.RetryError,
    google_auth_errors.TransportError,
    requests.RequestException,
)


def _submit_failure(exc: Exception) -> Exception:
    """A definite refusal (a 4xx other than throttling) is final; anything else (a
    timeout, UNAVAILABLE, a 5xx) leaves the job's existence unknown."""
    if isinstance(exc, google_errors.ClientError) and not isinstance(
        exc, google_errors.TooManyRequests
    ):
        return SubmitError(f"Google Batch refused the head job: {_error(exc)}")
    return SubmitUnknown(f"Google Batch did not answer the head job's creation: {_error(exc)}")


class GoogleBatchBackend(Backend):
    platform = compute_envs.GOOGLE_BATCH

    def __init__(self, config: Mapping[str, Any], create_budget: float = 30.0) -> None:
        """``create_budget``: seconds the CreateJob call may take in all (connecting and
        reading are each given half of it)."""
        self.config = dict(config)
        self.keys = self.config.pop("credentials", None)
        self.config.pop("credentialsId", None)
        self.project = self.config["projectId"]
        self.location = self.config["location"]
        self.parent = f"projects/{self.project}/locations/{self.location}"
        self.endpoint = self.config.get("endpointUrl")
        self.create_timeout = create_budget / 2

    @classmethod
    def from_settings(cls, settings: Any, config: dict[str, Any]) -> GoogleBatchBackend:
        return cls(config, create_budget=settings.create_budget)

    @property
    def batch(self) -> batch_v1.BatchServiceClient:
        return _client("batch", self.project, self.endpoint, self.keys)

    @property
    def logging(self) -> cloud_logging.Client:
        return _client("logging", self.project, self.endpoint, self.keys)

    def list_outputs(self, query: OutputsQuery) -> run_outputs.Listing | None:
        """The objects under a ``gs://`` outdir: Cloud Storage's JSON API ``objects.list``
        (at the compute environment's ``endpointUrl`` when it names one), in name order,
        read no further than the bound."""
        if run_outputs.scheme_of(query.outdir) != "gs":
            return None
        bucket, prefix = run_outputs.bucket_and_prefix(query.outdir)
        credentials = service_account(self.keys)
        if credentials is None:
            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        session = AuthorizedSession(credentials)
        base = (self.endpoint or STORAGE_ENDPOINT).rstrip("/")
        url = f"{base}/storage/v1/b/{quote(bucket, safe='')}/o"

        def found():
            token = None
            while True:
                params = {"prefix": prefix, "fields": "items(name,size),nextPageToken"}
                if token:
                    params["pageToken"] = token
                _count("ListObjects")
                answer = session.get(url, params=params, timeout=60)
                answer.raise_for_status()
                page = answer.json()
                for item in page.get("items", ()):
                    name = item["name"]
                    if not name.endswith("/"):
                        location = f"gs://{bucket}/{name}"
                        size = int(item.get("size") or 0)
                        yield run_outputs.OutputFile(name[len(prefix) :], location, size)
                token = page.get("nextPageToken")
                if not token:
                    return

        return run_outputs.bounded(found(), query.limit)

    @staticmethod
    def _handle(job: batch_v1.Job) -> str:
        return json.dumps({"name": job.name, "uid": job.uid})

    def job(self, run: RunSnapshot, argv: list[str]) -> batch_v1.Job:
        """The Batch job that runs the head container for ``run``."""
        cpus, memory = head_job.resources(self.config, run)
        environment = head_job.environment(self.platform, self.config, run)
        command = head_job.container_command(argv)
        runnable = batch_v1.Runnable(
            container=batch_v1.Runnable.Container(
                image_uri=head_job.image(self.config, run),
                entrypoint=command[0],
                commands=command[1:],
            ),
            environment=batch_v1.Environment(variables=environment),
        )
        task = batch_v1.TaskSpec(
            runnables=[runnable],
            compute_resource=batch_v1.ComputeResource(cpu_milli=cpus * 1000, memory_mib=memory),
            max_retry_count=0,
        )
        policy = batch_v1.AllocationPolicy.InstancePolicy(
            provisioning_model=(
                batch_v1.AllocationPolicy.ProvisioningModel.SPOT
                if self.config.get("spot")
                else batch_v1.AllocationPolicy.ProvisioningModel.STANDARD
            )
        )
        if self.config.get("machineType"):
            policy.machine_type = self.config["machineType"]
        if self.config.get("bootDiskSizeGb"):
            policy.boot_disk = batch_v1.AllocationPolicy.Disk(size_gb=self.config["bootDiskSizeGb"])
        allocation = batch_v1.AllocationPolicy(
            instances=[batch_v1.AllocationPolicy.InstancePolicyOrTemplate(policy=policy)],
            location=batch_v1.AllocationPolicy.LocationPolicy(
                allowed_locations=[f"regions/{self.location}"]
            ),
        )
        if self.config.get("serviceAccount"):
            allocation.service_account = batch_v1.ServiceAccount(
                email=self.config["serviceAccount"]
            )
        if self.config.get("network") or self.config.get("subnetwork"):
            interface = batch_v1.AllocationPolicy.NetworkInterface(
                network=self.config.get("network") or "",
                subnetwork=self.config.get("subnetwork") or "",
                no_external_ip_address=bool(self.config.get("usePrivateAddress")),
            )
            allocation.network = batch_v1.AllocationPolicy.NetworkPolicy(
                network_interfaces=[interface]
            )
        labels = dict(self.config.get("labels") or {})
        labels.update({MANAGED_LABEL[0]: MANAGED_LABEL[1], RUN_LABEL: job_id(run.run_id)})
        return batch_v1.Job(
            task_groups=[batch_v1.TaskGroup(task_count=1, task_spec=task)],
            allocation_policy=allocation,
            labels=labels,
            logs_policy=batch_v1.LogsPolicy(
                destination=batch_v1.LogsPolicy.Destination.CLOUD_LOGGING
            ),
        )

    def check(self) -> str | None:
        try:
            _count("ListJobs")
            self.batch.list_jobs(
                request={"parent": self.parent, "page_size": 1}, timeout=CALL_TIMEOUT
            )
        except google_errors.GoogleAPICallError as exc:
            return f"Google Batch in {self.parent} did not answer: {_error(exc)}"
        return None

    def command(self, run: RunSnapshot) -> list[str]:
        return head_job.command(run)

    def submit(self, run: RunSnapshot, claim: Callable[[], None] = no_claim) -> Submission:
        """CreateJob with the job id derived from the run: idempotent, so a create whose
        answer was lost is answered ALREADY_EXISTS next time and that job is used."""
        head_job.check_pipeline(run, "Google Batch")
        argv = self.command(run)
        job = self.job(run, argv)
        try:
            claim()
            _count("CreateJob")
            created = self.batch.create_job(
                parent=self.parent,
                job_id=job_id(run.run_id),
                job=job,
                retry=None,
                timeout=self.create_timeout,
            )
        except google_errors.Conflict:  # ALREADY_EXISTS: a previous submit made it
            try:
                existing = self.find(run)
            except _LOST_ANSWER as exc:
                raise _submit_failure(exc) from exc
            if existing is None:
                raise SubmitUnknown("Google Batch says the job exists but cannot find it") from None
            return Submission(handle=existing, command=argv)
        except _LOST_ANSWER as exc:
            raise _submit_failure(exc) from exc
        return Submission(handle=self._handle(created), command=argv)

    def find(self, run: RunSnapshot) -> str | None:
        try:
            _count("GetJob")
            job = self.batch.get_job(
                name=f"{self.parent}/jobs/{job_id(run.run_id)}", timeout=CALL_TIMEOUT
            )
        except google_errors.NotFound:
            return None
        return self._handle(job)

    def _live_jobs(self) -> dict[str, batch_v1.Job]:
        """This service's jobs of the location that have not ended, by name."""
        states = " OR ".join(f'status.state="{state}"' for state in LIVE_STATES)
        request = {
            "parent": self.parent,
            "filter": f'labels.{MANAGED_LABEL[0]}="{MANAGED_LABEL[1]}" AND ({states})',
            "page_size": LIST_PAGE_SIZE,
        }
        pager = self.batch.list_jobs(request=request, timeout=CALL_TIMEOUT)
        jobs: dict[str, batch_v1.Job] = {}
        for page in pager.pages:  # each page is one call
            _count("ListJobs")
            jobs.update((job.name, job) for job in page.jobs)
        return jobs

    def poll(self, handles: Sequence[str]) -> dict[str, JobReport]:
        wanted = {json.loads(handle)["name"]: handle for handle in dict.fromkeys(handles)}
        live = self._live_jobs()
        reports: dict[str, JobReport] = {}
        for name, handle in wanted.items():
            job = live.get(name)
            if job is None:  # ended since the last look (or gone): ask for it alone
                try:
                    _count("GetJob")
                    job = self.batch.get_job(name=name, timeout=CALL_TIMEOUT)
                except google_errors.NotFound:
                    reports[handle] = JobReport(
                        BackendStatus.SYSTEM_FAILED, message="Google Batch no longer knows the job"
                    )
                    continue
                except _LOST_ANSWER:  # this one job is not reported; the others are
                    log.warning("Google Batch did not describe %s", name, exc_info=True)
                    continue
            reports[handle] = report_of(job)
        return reports

    def cancel(self, handle: str, *, force: bool = False) -> bool:
        """CancelJob stops the task and its VM; a job that has ended is left alone."""
        try:
            _count("CancelJob")
            self.batch.cancel_job(name=json.loads(handle)["name"], timeout=CALL_TIMEOUT)
        except (google_errors.NotFound, google_errors.FailedPrecondition):
            return False
        return True

    def release(self, handle: str) -> None:
        """A cancelled job's record is deleted once its log has been copied."""
        _count("DeleteJob")
        with contextlib.suppress(google_errors.NotFound):
            self.batch.delete_job(name=json.loads(handle)["name"], timeout=CALL_TIMEOUT)

    def read_log(self, handle: str, cursor: str | None) -> tuple[list[str], str | None]:
        """Lines after ``cursor`` (a JSON of the last entry's timestamp and the insert ids
        seen at that instant, so entries that share a timestamp are neither lost nor
        repeated)."""
        uid = json.loads(handle)["uid"]
        state = json.loads(cursor) if cursor else {}
        query = f'logName="projects/{self.project}/logs/{TASK_LOG}" AND labels.job_uid="{uid}"'
        if state.get("time"):
            query += f' AND timestamp>="{state["time"]}"'
        seen = set(state.get("ids", ()))
        last_time, last_ids = state.get("time"), list(state.get("ids", ()))
        lines: list[str] = []
        entries = self.logging.list_entries(
            resource_names=[f"projects/{self.project}"],
            filter_=query,
            order_by=cloud_logging.ASCENDING,
            page_size=LOG_PAGE_SIZE,
        )
        _count("ListLogEntries")
        for number, entry in enumerate(entries, start=1):
            if number % LOG_PAGE_SIZE == 0:  # the iterator asks for the next page
                _count("ListLogEntries")
            if entry.insert_id in seen:
                continue
            payload = entry.payload
            lines.append(payload if isinstance(payload, str) else json.dumps(payload))
            stamp = _rfc3339(entry.timestamp)
            if stamp != last_time:
                last_time, last_ids = stamp, []
            last_ids.append(entry.insert_id)
        if last_time is None:
            return lines, cursor
        return lines, json.dumps({"time": last_time, "ids": last_ids})


def _rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
