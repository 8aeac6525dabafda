"""A local stand-in of Google Cloud Batch, Cloud Logging's entries.list, Cloud Storage's
objects.list (JSON API, objects put by tests with ``put_object``) and the GCE metadata
server, driven over real connections by the official client libraries.

No emulator exists for Batch or Cloud Logging, so this module serves the wire
protocols itself from one in-memory core (:class:`FakeGoogleBatch`):

* gRPC: ``google.cloud.batch.v1.BatchService/{CreateJob,GetJob,ListJobs,DeleteJob,
  CancelJob}`` and ``google.logging.v2.LoggingServiceV2/ListLogEntries``;
* REST: the Batch v1 routes used by ``BatchServiceClient(transport="rest")`` and
  ``POST /v2/entries:list`` used by ``google.cloud.logging.Client(_use_grpc=False)``;
* a GCE metadata server, so ``google.auth.default()`` returns Compute Engine
  credentials and the fake project with no network (see :meth:`GoogleCloudFake.metadata_env`).

Jobs follow a plan of states (QUEUED -> SCHEDULED -> RUNNING -> SUCCEEDED by default).
A job only moves on when it is read (GetJob, ListJobs, ListLogEntries): there is no
background thread, and a test controls outcomes with ``plan_for``, ``lines_for`` and
:meth:`FakeGoogleBatch.finish`.

Usage::

    with GoogleCloudFake() as fake:
        fake.plan_for = lambda job: held_plan()
        client = batch_v1.BatchServiceClient(
            transport="rest", client_options={"api_endpoint": fake.rest_endpoint})
        ...
        fake.finish("my-job", "FAILED", exit_code=2, lines=[stderr("boom")])

or through the pytest fixtures at the end of this module: ``google_cloud`` (the servers,
once per session), ``fake_google`` (emptied for each test) and ``google_adc`` (also points
Application Default Credentials at the fake metadata server for the test).
"""

from __future__ import annotations

import base64
import collections
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

import grpc
import proto
import pytest
from google.cloud import batch_v1
from google.cloud.logging_v2 import types as logging_types
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2, json_format

DEFAULT_PROJECT = "fake-project"
PROJECT_NUMBER = "123456789012"
ACCESS_TOKEN = "fake-access-token"
# Deliberately not *.gserviceaccount.com: google-auth then skips its "regional access
# boundary" lookup, a background call to iamcredentials.googleapis.com on the internet.
SERVICE_ACCOUNT_EMAIL = f"fake-compute@{DEFAULT_PROJECT}.invalid"

TASK_LOG = "batch_task_logs"
AGENT_LOG = "batch_agent_logs"
JOB_RESOURCE_TYPE = "batch.googleapis.com/Job"

JOB_ID_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
LABEL_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_PATTERN = re.compile(r"^[a-z0-9_-]{0,63}$")
PARENT_PATTERN = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)$")
JOB_NAME_PATTERN = re.compile(
    r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/jobs/(?P<job_id>[^/]+)$"
)

# Project variables win over the metadata server's project. They must be absent, not
# empty: google-cloud-core takes an empty GOOGLE_CLOUD_PROJECT as the project "".
ADC_UNSET_ENV = ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT")

JOBS_DEFAULT_PAGE_SIZE = 100
LOGS_DEFAULT_PAGE_SIZE = 50
LOGS_MAX_PAGE_SIZE = 1000

State = batch_v1.JobStatus.State
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
# Task-level state reported in status.task_groups["group0"].counts for each job state.
TASK_STATE_FOR = {
    "QUEUED": "PENDING",
    "SCHEDULED": "ASSIGNED",
    "RUNNING": "RUNNING",
    "SUCCEEDED": "SUCCEEDED",
    "FAILED": "FAILED",
}
SEVERITIES = {
    "DEFAULT": 0,
    "DEBUG": 100,
    "INFO": 200,
    "NOTICE": 300,
    "WARNING": 400,
    "ERROR": 500,
    "CRITICAL": 600,
    "ALERT": 700,
    "EMERGENCY": 800,
}

# Canonical status -> (HTTP status, gRPC code), as Google's REST gateway maps them.
STATUS_CODES: dict[str, tuple[int, grpc.StatusCode]] = {
    "INVALID_ARGUMENT": (400, grpc.StatusCode.INVALID_ARGUMENT),
    "FAILED_PRECONDITION": (400, grpc.StatusCode.FAILED_PRECONDITION),
    "OUT_OF_RANGE": (400, grpc.StatusCode.OUT_OF_RANGE),
    "UNAUTHENTICATED": (401, grpc.StatusCode.UNAUTHENTICATED),
    "PERMISSION_DENIED": (403, grpc.StatusCode.PERMISSION_DENIED),
    "NOT_FOUND": (404, grpc.StatusCode.NOT_FOUND),
    "ALREADY_EXISTS": (409, grpc.StatusCode.ALREADY_EXISTS),
    "ABORTED": (409, grpc.StatusCode.ABORTED),
    "RESOURCE_EXHAUSTED": (429, grpc.StatusCode.RESOURCE_EXHAUSTED),
    "CANCELLED": (499, grpc.StatusCode.CANCELLED),
    "INTERNAL": (500, grpc.StatusCode.INTERNAL),
    "UNIMPLEMENTED": (501, grpc.StatusCode.UNIMPLEMENTED),
    "UNAVAILABLE": (503, grpc.StatusCode.UNAVAILABLE),
    "DEADLINE_EXCEEDED": (504, grpc.StatusCode.DEADLINE_EXCEEDED),
}


class ApiError(Exception):
    """An error the fake answers with: a canonical status name and a message."""

    def __init__(self, status: str, message: str) -> None:
        if status not in STATUS_CODES:
            raise ValueError(f"unknown status {status!r}")
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message

    @property
    def http_code(self) -> int:
        return STATUS_CODES[self.status][0]

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return STATUS_CODES[self.status][1]


@dataclass(frozen=True)
class LogLine:
    """One line a job prints; ``stderr`` lines are logged with severity ERROR."""

    text: str
    stderr: bool = False


def stderr(text: str) -> LogLine:
    """A line printed on standard error."""
    return LogLine(text, stderr=True)


LineLike = str | LogLine


@dataclass(frozen=True)
class Step:
    """One state of a job's plan.

    ``seconds`` is how long the job stays in the state (None: until :meth:`finish` or a
    cancel). ``exit_code`` is reported in the terminal status event (default 0 for
    SUCCEEDED, 1 for FAILED). ``lines`` are logged when the state is entered.
    """

    state: str
    seconds: float | None = 0.0
    exit_code: int | None = None
    lines: tuple[LineLike, ...] = ()

    def __post_init__(self) -> None:
        name = self.state.name if isinstance(self.state, State) else str(self.state)
        if name not in State.__members__ or name == "STATE_UNSPECIFIED":
            raise ValueError(f"unknown job state {self.state!r}")
        object.__setattr__(self, "state", name)
        object.__setattr__(self, "lines", tuple(self.lines))


StepLike = Step | tuple[Any, ...]


def default_plan(
    step_seconds: float = 0.05,
    run_seconds: float | None = None,
    state: str = "SUCCEEDED",
    exit_code: int | None = None,
    lines: Sequence[LineLike] = (),
) -> list[Step]:
    """QUEUED -> SCHEDULED -> RUNNING -> ``state``, with short steps."""
    run = step_seconds * 2 if run_seconds is None else run_seconds
    return [
        Step("QUEUED", step_seconds),
        Step("SCHEDULED", step_seconds),
        Step("RUNNING", run),
        Step(state, exit_code=exit_code, lines=tuple(lines)),
    ]


def held_plan(step_seconds: float = 0.0) -> list[Step]:
    """QUEUED -> SCHEDULED -> RUNNING, then RUNNING until finished or cancelled."""
    return [Step("QUEUED", step_seconds), Step("SCHEDULED", step_seconds), Step("RUNNING", None)]


def _as_step(item: StepLike) -> Step:
    if isinstance(item, Step):
        return item
    return Step(*item)


def _as_line(item: LineLike) -> LogLine:
    return item if isinstance(item, LogLine) else LogLine(str(item))


def _copy(message: proto.Message) -> Any:
    """A deep copy, so a response is never mutated while another thread serializes it."""
    cls = type(message)
    return cls.deserialize(cls.serialize(message))


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _micros_to_datetime(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def _parse_time(text: str) -> datetime:
    """RFC 3339 (any fraction length, ``Z`` or an offset) or a bare date, as UTC."""
    match = re.fullmatch(r"(.*?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", text.strip())
    if match:
        base, fraction, zone = match.groups()
        fraction = (fraction or "")[:6].ljust(6, "0")
        zone = "+00:00" if zone in (None, "Z") else zone
        text = f"{base}.{fraction}{zone}"
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise ApiError("INVALID_ARGUMENT", f"Invalid timestamp {text!r} in filter") from error
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- filters -------------------------------------------------------------------------------
#
# A subset of the AIP-160 / Logging query language: comparisons `field OP value` with OP in
# = != > >= < <= : =~ !~, joined by AND, OR or whitespace (an implicit AND), NOT and
# parentheses. As in both languages OR binds tighter than AND: `a AND b OR c` is
# `a AND (b OR c)`.

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>\()|(?P<close>\))|
        (?P<keyword>(?:AND|OR|NOT)(?=[\s()]|$))|
        (?P<field>[A-Za-z_][\w-]*(?:\.(?:[\w/-]+|"(?:[^"\\]|\\.)*"))*)
            \s*(?P<op>!=|>=|<=|=~|!~|=|>|<|:)\s*
            (?P<value>"(?:[^"\\]|\\.)*"|[^\s()"]+)
    )""",
    re.VERBOSE,
)

Getter = Callable[[Any], Any]
Coerce = Callable[[str], Any]
Lookup = Callable[[str], tuple[Getter, Coerce]]
Predicate = Callable[[Any], bool]


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if op == "!=":
        return actual != expected
    if op == "!~":
        return actual is None or re.search(str(expected), str(actual)) is None
    if actual is None:
        return False
    if op == "=":
        return actual == expected
    if op == ":":
        if isinstance(actual, str) and isinstance(expected, str):
            return expected in actual
        return actual == expected
    if op == "=~":
        return re.search(str(expected), str(actual)) is not None
    if op == ">":
        return actual > expected
    if op == ">=":
        return actual >= expected
    if op == "<":
        return actual < expected
    return actual <= expected


def compile_filter(text: str, lookup: Lookup) -> Predicate:
    """Parse ``text`` once into a predicate; unknown fields or bad syntax: INVALID_ARGUMENT."""
    tokens: list[tuple[str, Any]] = []
    position = 0
    text = text or ""
    while position < len(text):
        if not text[position:].strip():
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise ApiError("INVALID_ARGUMENT", f"Invalid filter near {text[position:]!r}")
        position = match.end()
        if match["open"]:
            tokens.append(("(", None))
        elif match["close"]:
            tokens.append((")", None))
        elif match["keyword"]:
            tokens.append((match["keyword"], None))
        else:
            name = ".".join(_unquote(part) for part in _split_field(match["field"]))
            getter, coerce = lookup(name)
            expected = coerce(_unquote(match["value"]))
            tokens.append(("cmp", (getter, match["op"], expected)))

    index = 0

    def peek() -> str | None:
        return tokens[index][0] if index < len(tokens) else None

    def take() -> tuple[str, Any]:
        nonlocal index
        index += 1
        return tokens[index - 1]

    def conjunction() -> Predicate:
        parts = [disjunction()]
        while peek() not in (None, ")"):
            if peek() == "AND":
                take()
            parts.append(disjunction())
        return lambda item: all(part(item) for part in parts)

    def disjunction() -> Predicate:
        parts = [unary()]
        while peek() == "OR":
            take()
            parts.append(unary())
        return lambda item: any(part(item) for part in parts)

    def unary() -> Predicate:
        kind, payload = take() if index < len(tokens) else ("end", None)
        if kind == "NOT":
            inner = unary()
            return lambda item: not inner(item)
        if kind == "(":
            inner = conjunction()
            if peek() != ")":
                raise ApiError("INVALID_ARGUMENT", f"Unbalanced parentheses in filter {text!r}")
            take()
            return inner
        if kind == "cmp":
            getter, op, expected = payload
            return lambda item: _compare(getter(item), op, expected)
        raise ApiError("INVALID_ARGUMENT", f"Invalid filter {text!r}")

    if not tokens:
        return lambda item: True
    predicate = conjunction()
    if index != len(tokens):
        raise ApiError("INVALID_ARGUMENT", f"Unbalanced parentheses in filter {text!r}")
    return predicate


def _split_field(field_text: str) -> list[str]:
    return re.findall(r'"(?:[^"\\]|\\.)*"|[^.]+', field_text)


def _job_state_value(text: str) -> str:
    if text not in State.__members__:
        raise ApiError("INVALID_ARGUMENT", f"Invalid job state {text!r} in filter")
    return text


def _job_field(name: str) -> tuple[Getter, Coerce]:
    """Fields a ListJobs filter may name."""
    if name == "name":
        return (lambda record: record.name), str
    if name == "uid":
        return (lambda record: record.uid), str
    if name in ("status.state", "state"):
        return (lambda record: record.state), _job_state_value
    if name.startswith("labels.") and len(name) > len("labels."):
        key = name[len("labels.") :]
        return (lambda record: record.job.labels.get(key)), str
    if name in ("create_time", "createTime"):
        return (lambda record: record.created_at), _parse_time
    if name in ("update_time", "updateTime"):
        return (lambda record: record.job.update_time), _parse_time
    raise ApiError("INVALID_ARGUMENT", f"Invalid filter: unsupported field {name!r}")


def _severity_value(text: str) -> int:
    if text.upper() in SEVERITIES:
        return SEVERITIES[text.upper()]
    if text.isdigit():
        return int(text)
    raise ApiError("INVALID_ARGUMENT", f"Invalid severity {text!r} in filter")


def _log_field(name: str) -> tuple[Getter, Coerce]:
    """Fields a ListLogEntries filter may name."""
    if name in ("logName", "log_name"):
        return (lambda record: record.entry.log_name), str
    if name == "severity":
        return (lambda record: int(record.entry.severity)), _severity_value
    if name == "timestamp":
        return (lambda record: record.timestamp), _parse_time
    if name in ("textPayload", "text_payload"):
        return (lambda record: record.entry.text_payload), str
    if name in ("insertId", "insert_id"):
        return (lambda record: record.entry.insert_id), str
    if name == "resource.type":
        return (lambda record: record.entry.resource.type), str
    if name.startswith("resource.labels.") and len(name) > len("resource.labels."):
        key = name[len("resource.labels.") :]
        return (lambda record: record.entry.resource.labels.get(key)), str
    if name.startswith("labels.") and len(name) > len("labels."):
        key = name[len("labels.") :]
        return (lambda record: record.entry.labels.get(key)), str
    raise ApiError("INVALID_ARGUMENT", f"Invalid filter: unsupported field {name!r}")


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _page_offset(token: str) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        prefix, offset = text.split(":")
        if prefix != "offset" or int(offset) < 0:
            raise ValueError(token)
        return int(offset)
    except ValueError as error:
        raise ApiError("INVALID_ARGUMENT", f"Invalid page token {token!r}") from error


# --- the core ------------------------------------------------------------------------------


@dataclass
class JobRecord:
    """A job as the fake holds it: the current server view, what was received, and its plan."""

    job: batch_v1.Job
    received: batch_v1.Job
    plan: list[Step]
    created_at: datetime
    index: int = 0
    entered_at: float = 0.0
    running_since: float | None = None

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def uid(self) -> str:
        return self.job.uid

    @property
    def job_id(self) -> str:
        return self.job.name.rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        return self.job.name.rsplit("/jobs/", 1)[0]

    @property
    def project(self) -> str:
        return self.job.name.split("/")[1]

    @property
    def location(self) -> str:
        return self.job.name.split("/")[3]

    @property
    def state(self) -> str:
        return State(self.job.status.state).name

    @property
    def logs_enabled(self) -> bool:
        destination = self.received.logs_policy.destination
        return destination == batch_v1.LogsPolicy.Destination.CLOUD_LOGGING


@dataclass
class LogRecord:
    entry: logging_types.LogEntry
    timestamp: datetime
    micros: int


def _default_lines(job: batch_v1.Job) -> list[LineLike]:
    job_id = job.name.rsplit("/", 1)[-1]
    return [f"Started {job_id}", f"Finished {job_id}"]


class FakeGoogleBatch:
    """In-memory Batch jobs and Cloud Logging entries, with real-service semantics.

    Test hooks (reset by :meth:`reset`):

    * ``locations``: set of valid locations, or None to accept any;
    * ``plan_for(job) -> [Step | (state, seconds[, exit_code[, lines]]), ...]``: a job's plan;
      by default :func:`default_plan` with ``step_seconds``;
    * ``lines_for(job) -> [str | LogLine, ...]``: what a job prints when it starts running
      (only logged if the job asked for ``logs_policy.destination = CLOUD_LOGGING``);
    * ``require_auth``: reject calls without ``Authorization: Bearer ACCESS_TOKEN``;
    * :meth:`finish`, :meth:`write_lines`, :meth:`fail_next`, :meth:`lose_answer`.

    Inspection: ``jobs`` (name -> :class:`JobRecord`), :meth:`created`, :meth:`job`,
    ``log_entries``, ``calls`` (method name -> count), ``transport_calls``
    ((``"grpc"``/``"rest"``, method) -> count), ``authorizations`` (Authorization header
    value -> count), ``metadata_requests`` (metadata path -> count).
    """

    def __init__(self, project: str = DEFAULT_PROJECT, step_seconds: float = 0.05) -> None:
        self.project = project
        self.step_seconds = step_seconds
        self.lock = threading.RLock()
        self.clock: Callable[[], float] = time.time
        self.reset()

    # --- state ---

    def reset(self) -> None:
        """Forget all jobs, log entries, counters, injected errors and hooks."""
        with self.lock:
            self.jobs: dict[str, JobRecord] = {}
            self.log_entries: list[LogRecord] = []
            self.calls: collections.Counter[str] = collections.Counter()
            self.transport_calls: collections.Counter[tuple[str, str]] = collections.Counter()
            self.authorizations: collections.Counter[str] = collections.Counter()
            self.metadata_requests: collections.Counter[str] = collections.Counter()
            # Service accounts whose keys the fake knows (email -> public key PEM), the
            # tokens its token endpoint issued (token -> email), and who made each call.
            self.service_accounts: dict[str, str] = {}
            self.issued_tokens: dict[str, str] = {}
            self.callers: list[tuple[str, str | None]] = []
            self.locations: set[str] | None = None
            self.require_auth = False
            self.plan_for: Callable[[batch_v1.Job], Sequence[StepLike]] | None = None
            self.lines_for: Callable[[batch_v1.Job], Sequence[LineLike]] = _default_lines
            self._received: dict[str, batch_v1.Job] = {}
            self._injected: dict[str, list[ApiError]] = collections.defaultdict(list)
            self._lost: dict[str, list[ApiError]] = collections.defaultdict(list)
            self._last_log_micros = 0
            self._insert_counter = 0
            # Cloud Storage: bucket -> object name -> content; objects.list pages this many.
            self.objects: dict[str, dict[str, bytes]] = collections.defaultdict(dict)
            self.objects_page_size = 1000

    def put_object(self, bucket: str, name: str, data: bytes) -> None:
        """An object in a Cloud Storage bucket, for ``objects.list`` to find."""
        with self.lock:
            self.objects[bucket][name] = data

    def list_objects(self, bucket: str, query: Mapping[str, str]) -> dict[str, Any]:
        """Cloud Storage JSON API ``objects.list``: names in lexicographic order, filtered
        by ``prefix``, ``maxResults`` (at most ``objects_page_size``) a page."""
        with self.lock:
            if bucket not in self.objects:
                raise ApiError("NOT_FOUND", "The specified bucket does not exist.")
            prefix = query.get("prefix", "")
            names = sorted(name for name in self.objects[bucket] if name.startswith(prefix))
            size = min(int(query.get("maxResults") or 1000), self.objects_page_size)
            start = _page_offset(query.get("pageToken", ""))
            page = names[start : start + size]
            answer: dict[str, Any] = {"kind": "storage#objects"}
            if page:
                answer["items"] = [
                    {
                        "kind": "storage#object",
                        "bucket": bucket,
                        "name": name,
                        "size": str(len(self.objects[bucket][name])),
                    }
                    for name in page
                ]
            if start + size < len(names):
                answer["nextPageToken"] = _page_token(start + size)
            return answer

    def fail_next(
        self, method: str, status: str = "UNAVAILABLE", message: str = "", times: int = 1
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (e.g. "GetJob") with an error."""
        error = ApiError(status, message or f"Injected {status} for {method}")
        with self.lock:
            self._injected[method].extend([error] * times)

    def lose_answer(self, method: str, status: str = "UNAVAILABLE", times: int = 1) -> None:
        """Carry out the next ``times`` calls of ``method`` (e.g. "CreateJob"), but answer
        each with an error, as when the answer is lost on the way back."""
        error = ApiError(status, f"Injected {status} after {method} was carried out")
        with self.lock:
            self._lost[method].extend([error] * times)

    def answer_lost(self, method: str) -> None:
        """Raise the error planned for a call just carried out (used by the fronts)."""
        with self.lock:
            if self._lost.get(method):
                raise self._lost[method].pop(0)

    def record_call(self, transport: str, method: str, authorization: str | None) -> None:
        """Count a call and apply auth checks and injected errors (used by the fronts)."""
        with self.lock:
            self.calls[method] += 1
            self.transport_calls[(transport, method)] += 1
            self.authorizations[authorization or ""] += 1
            self.callers.append((method, self.identity(authorization)))
            if self.require_auth and authorization != f"Bearer {ACCESS_TOKEN}":
                raise ApiError(
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. "
                    "Expected OAuth 2 access token.",
                )
            if self._injected.get(method):
                raise self._injected[method].pop(0)

    # --- who is calling ---

    def identity(self, authorization: str | None) -> str | None:
        """The service account a call's bearer token stands for: the metadata server's
        (its access token), one the token endpoint issued a token to, or one whose key
        signed the token itself (a self-signed JWT, as google-auth sends for a
        service-account key); None without a token, "unknown" for any other."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = authorization.removeprefix("Bearer ")
        if token == ACCESS_TOKEN:
            return SERVICE_ACCOUNT_EMAIL
        if token in self.issued_tokens:
            return self.issued_tokens[token]
        return self.verified_issuer(token) or "unknown"

    def verified_issuer(self, token: str) -> str | None:
        """The email of the known service account whose key signed the JWT ``token``."""
        from google.auth import exceptions as auth_errors
        from google.auth import jwt

        try:
            claims = jwt.decode(token, verify=False)
        except (ValueError, auth_errors.GoogleAuthError):
            return None
        email = claims.get("iss")
        key = self.service_accounts.get(email)
        if key is None:
            return None
        try:
            jwt.decode(token, certs=key)
        except (ValueError, auth_errors.GoogleAuthError):
            return None
        return email

    def exchange(self, form: Mapping[str, str]) -> dict[str, Any] | None:
        """OAuth 2's JWT-bearer grant (RFC 7523), as Google's token endpoint answers it:
        an access token for the service account whose key signed the assertion."""
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return None
        email = self.verified_issuer(form.get("assertion", ""))
        if email is None:
            return None
        token = f"sa-token-{uuid.uuid4().hex}"
        with self.lock:
            self.issued_tokens[token] = email
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    # --- lookup helpers ---

    def _resolve(self, key: str) -> JobRecord:
        """A job by full name, job id or uid."""
        if key in self.jobs:
            return self.jobs[key]
        found = [r for r in self.jobs.values() if key in (r.job_id, r.uid)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} jobs match {key!r}")
        return found[0]

    def job(self, key: str) -> JobRecord:
        """The record of a live job by full name, job id or uid (advanced to now)."""
        with self.lock:
            record = self._resolve(key)
            self._advance(record)
            return record

    def created(self, key: str) -> batch_v1.Job:
        """The Job message exactly as the client sent it (kept after DeleteJob)."""
        with self.lock:
            if key in self._received:
                return _copy(self._received[key])
            found = [name for name in self._received if name.rsplit("/", 1)[-1] == key]
            if len(found) != 1:
                raise KeyError(f"{len(found)} created jobs match {key!r}")
            return _copy(self._received[found[0]])

    def _check_parent(self, parent: str, *, allow_any_location: bool = False) -> re.Match[str]:
        match = PARENT_PATTERN.match(parent or "")
        if not match:
            raise ApiError("INVALID_ARGUMENT", f"Invalid parent {parent!r}")
        location = match["location"]
        if allow_any_location and location == "-":
            return match
        if self.locations is not None and location not in self.locations:
            raise ApiError(
                "NOT_FOUND",
                f"Location {location!r} is not found or is not supported by Batch "
                f"(resource {parent!r}).",
            )
        return match

    def _get_record(self, name: str) -> JobRecord:
        if not JOB_NAME_PATTERN.match(name or ""):
            raise ApiError("INVALID_ARGUMENT", f"Invalid job name {name!r}")
        record = self.jobs.get(name)
        if record is None:
            raise ApiError("NOT_FOUND", f"Job {name!r} not found.")
        return record

    # --- Batch methods (proto-plus request in, message out) ---

    def create_job(self, request: batch_v1.CreateJobRequest) -> batch_v1.Job:
        with self.lock:
            self._check_parent(request.parent)
            job_id = request.job_id or f"j-{uuid.uuid4()}"
            if not JOB_ID_PATTERN.match(job_id):
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"Job id {job_id!r} is invalid: it must be at most 63 characters, start "
                    "with a lowercase letter, contain only lowercase letters, digits and "
                    "hyphens, and not end with a hyphen.",
                )
            _validate_job(request.job)
            name = f"{request.parent}/jobs/{job_id}"
            if name in self.jobs:
                raise ApiError("ALREADY_EXISTS", f"Job {name!r} already exists.")

            now = self.clock()
            received = _copy(request.job)
            job = _copy(request.job)
            job.name = name
            job.uid = f"{job_id[:40]}-{uuid.uuid4()}"
            job.status = batch_v1.JobStatus()  # output only: whatever the client sent goes
            job.create_time = _utc(now)
            job.update_time = _utc(now)
            for position, group in enumerate(job.task_groups):
                group.name = f"{name}/taskGroups/group{position}"
            record = JobRecord(job=job, received=received, plan=[], created_at=_utc(now))
            plan_source = self.plan_for or (lambda _job: default_plan(self.step_seconds))
            record.plan = [_as_step(step) for step in plan_source(_copy(job))]
            if not record.plan:
                raise ValueError("a job plan needs at least one step")
            self.jobs[name] = record
            self._received[name] = received
            self._enter(record, 0, now)
            return _copy(record.job)

    def get_job(self, request: batch_v1.GetJobRequest) -> batch_v1.Job:
        with self.lock:
            record = self._get_record(request.name)
            self._advance(record)
            return _copy(record.job)

    def list_jobs(self, request: batch_v1.ListJobsRequest) -> batch_v1.ListJobsResponse:
        with self.lock:
            match = self._check_parent(request.parent, allow_any_location=True)
            predicate = compile_filter(request.filter, _job_field)
            if request.page_size < 0:
                raise ApiError("INVALID_ARGUMENT", "page_size must not be negative")
            records = [
                record
                for record in self.jobs.values()
                if record.project == match["project"]
                and match["location"] in ("-", record.location)
            ]
            for record in records:
                self._advance(record)
            records = [record for record in records if predicate(record)]
            records = _order_jobs(records, request.order_by)
            offset = _page_offset(request.page_token)
            size = request.page_size or JOBS_DEFAULT_PAGE_SIZE
            page = records[offset : offset + size]
            response = batch_v1.ListJobsResponse(jobs=[_copy(record.job) for record in page])
            if offset + size < len(records):
                response.next_page_token = _page_token(offset + size)
            return response

    def cancel_job(self, request: batch_v1.CancelJobRequest) -> operations_pb2.Operation:
        with self.lock:
            record = self._get_record(request.name)
            self._advance(record)
            if record.state in TERMINAL_STATES:
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f"Job {record.name!r} is already in a terminal state {record.state}.",
                )
            if record.state != "CANCELLATION_IN_PROGRESS":
                record.plan = record.plan[: record.index + 1] + [
                    Step("CANCELLATION_IN_PROGRESS", 0.0),
                    Step("CANCELLED"),
                ]
                self._enter(record, record.index + 1, self.clock())
            response = batch_v1.CancelJobResponse()
            return self._operation(record, "cancel", batch_v1.CancelJobResponse.pb(response))

    def delete_job(self, request: batch_v1.DeleteJobRequest) -> operations_pb2.Operation:
        with self.lock:
            record = self._get_record(request.name)
            del self.jobs[record.name]
            return self._operation(record, "delete", empty_pb2.Empty())

    def _operation(self, record: JobRecord, verb: str, response: Any) -> operations_pb2.Operation:
        """A finished long-running operation, so ``.result()`` needs no GetOperation."""
        now = _utc(self.clock())
        metadata = batch_v1.OperationMetadata(
            create_time=now, end_time=now, target=record.name, verb=verb, api_version="v1"
        )
        operation = operations_pb2.Operation(
            name=f"{record.parent}/operations/operation-{uuid.uuid4().hex}", done=True
        )
        operation.metadata.Pack(batch_v1.OperationMetadata.pb(metadata))
        operation.response.Pack(response)
        return operation

    # --- Logging method ---

    def list_log_entries(
        self, request: logging_types.ListLogEntriesRequest
    ) -> logging_types.ListLogEntriesResponse:
        with self.lock:
            if not request.resource_names:
                raise ApiError("INVALID_ARGUMENT", "resource_names must not be empty")
            prefixes = []
            for resource_name in request.resource_names:
                if not re.fullmatch(r"projects/[^/]+", resource_name):
                    raise ApiError(
                        "INVALID_ARGUMENT", f"Unsupported resource name {resource_name!r}"
                    )
                prefixes.append(f"{resource_name}/logs/")
            predicate = compile_filter(request.filter, _log_field)
            order = (request.order_by or "timestamp asc").strip()
            if order not in ("timestamp asc", "timestamp desc"):
                raise ApiError("INVALID_ARGUMENT", f"Invalid order_by {request.order_by!r}")
            if not 0 <= request.page_size <= LOGS_MAX_PAGE_SIZE:
                raise ApiError(
                    "INVALID_ARGUMENT", f"page_size must be within 0..{LOGS_MAX_PAGE_SIZE}"
                )
            for record in self.jobs.values():
                self._advance(record)
            entries = [
                record
                for record in self.log_entries
                if record.entry.log_name.startswith(tuple(prefixes)) and predicate(record)
            ]
            entries.sort(key=lambda record: record.micros, reverse=order.endswith("desc"))
            offset = _page_offset(request.page_token)
            size = request.page_size or LOGS_DEFAULT_PAGE_SIZE
            response = logging_types.ListLogEntriesResponse(
                entries=[_copy(record.entry) for record in entries[offset : offset + size]]
            )
            if offset + size < len(entries):
                response.next_page_token = _page_token(offset + size)
            return response

    # --- test hooks ---

    def finish(
        self,
        key: str,
        state: str = "SUCCEEDED",
        exit_code: int | None = None,
        lines: Iterable[LineLike] = (),
    ) -> None:
        """End a live job now in ``state`` and log ``lines`` as its last output."""
        with self.lock:
            record = self._resolve(key)
            self._advance(record)
            if record.state in TERMINAL_STATES:
                raise ValueError(f"job {record.name} already ended in {record.state}")
            step = Step(state, exit_code=exit_code, lines=tuple(lines))
            if step.state not in TERMINAL_STATES:
                raise ValueError(f"{state!r} is not a terminal state")
            record.plan = record.plan[: record.index + 1] + [step]
            self._enter(record, record.index + 1, self.clock())

    def write_lines(self, key: str, lines: Iterable[LineLike]) -> None:
        """Log more output of a job now (nothing is logged if its logs policy is not
        CLOUD_LOGGING, as on the real service)."""
        with self.lock:
            self._log_lines(self._resolve(key), lines, self.clock())

    # --- state machine ---

    def _advance(self, record: JobRecord) -> None:
        """Apply every plan step that is due by now (catching up several if reads were rare)."""
        now = self.clock()
        while record.index + 1 < len(record.plan) and record.state not in TERMINAL_STATES:
            seconds = record.plan[record.index].seconds
            if seconds is None or now < record.entered_at + seconds:
                return
            self._enter(record, record.index + 1, record.entered_at + seconds)

    def _enter(self, record: JobRecord, index: int, at: float) -> None:
        step = record.plan[index]
        previous = record.state if record.job.status.state else None
        record.index = index
        record.entered_at = at
        status = record.job.status
        status.state = State[step.state]
        record.job.update_time = _utc(at)
        task_state = TASK_STATE_FOR.get(step.state)
        if task_state and record.job.task_groups:
            counts = {task_state: record.job.task_groups[0].task_count or 1}
            status.task_groups["group0"] = batch_v1.JobStatus.TaskGroupStatus(counts=counts)
        if previous is not None and previous != step.state:
            event = batch_v1.StatusEvent(
                type_="STATUS_CHANGED",
                description=(
                    f"Job state is set from {previous} to {step.state} for job {record.name}."
                ),
                event_time=_utc(at),
            )
            if step.state in ("SUCCEEDED", "FAILED"):
                exit_code = step.exit_code
                if exit_code is None:
                    exit_code = 0 if step.state == "SUCCEEDED" else 1
                event.task_execution = batch_v1.TaskExecution(exit_code=exit_code)
            status.status_events.append(event)
        if step.state == "RUNNING" and previous != "RUNNING":
            record.running_since = at
            self._log(record, AGENT_LOG, f"Task {record.uid}-group0-0 is running.", "INFO", at)
            self._log_lines(record, self.lines_for(_copy(record.job)), at)
        self._log_lines(record, step.lines, at)
        if step.state in TERMINAL_STATES and record.running_since is not None:
            status.run_duration = timedelta(seconds=max(0.0, at - record.running_since))

    def _log_lines(self, record: JobRecord, lines: Iterable[LineLike], at: float) -> None:
        for item in lines:
            line = _as_line(item)
            self._log(record, TASK_LOG, line.text, "ERROR" if line.stderr else "INFO", at)

    def _log(self, record: JobRecord, log: str, text: str, severity: str, at: float) -> None:
        if not record.logs_enabled:
            return
        # Strictly increasing microsecond timestamps, so `timestamp>"last seen"` never skips.
        micros = max(int(at * 1_000_000), self._last_log_micros + 1)
        self._last_log_micros = micros
        self._insert_counter += 1
        timestamp = _micros_to_datetime(micros)
        entry = logging_types.LogEntry(
            log_name=f"projects/{record.project}/logs/{log}",
            resource={
                "type": JOB_RESOURCE_TYPE,
                "labels": {
                    "job_id": record.uid,
                    "location": record.location,
                    "resource_container": f"projects/{record.project}",
                },
            },
            text_payload=text,
            timestamp=timestamp,
            receive_timestamp=timestamp,
            severity=SEVERITIES[severity],
            insert_id=f"{self._insert_counter:08x}{uuid.uuid4().hex[:8]}",
            labels={
                "job_uid": record.uid,
                "task_group_name": f"{record.name}/taskGroups/group0",
                "task_id": f"{record.uid}-group0-0",
                "hostname": f"{record.uid[:30]}-group0-0-vm",
            },
        )
        self.log_entries.append(LogRecord(entry=entry, timestamp=timestamp, micros=micros))


def _validate_job(job: batch_v1.Job) -> None:
    """Some of the real service's checks on a new job: its documented limits (a single
    task group, runnables with something to run) and the Google Cloud label rules."""
    if len(job.task_groups) != 1:
        raise ApiError(
            "INVALID_ARGUMENT", "A job must have exactly one task group; only one is supported."
        )
    spec = job.task_groups[0].task_spec
    if not spec.runnables:
        raise ApiError("INVALID_ARGUMENT", "task_spec must have at least one runnable.")
    for position, runnable in enumerate(spec.runnables):
        kind = batch_v1.Runnable.pb(runnable).WhichOneof("executable")
        if kind is None:
            raise ApiError(
                "INVALID_ARGUMENT", f"runnables[{position}] needs a container, script or barrier."
            )
        if kind == "container" and not runnable.container.image_uri:
            raise ApiError(
                "INVALID_ARGUMENT", f"runnables[{position}].container.image_uri is empty."
            )
    if len(job.labels) > 64:
        raise ApiError("INVALID_ARGUMENT", "A job can have at most 64 labels.")
    for key, value in job.labels.items():
        if not LABEL_KEY_PATTERN.match(key) or not LABEL_VALUE_PATTERN.match(value):
            raise ApiError(
                "INVALID_ARGUMENT",
                f"Invalid label {key!r}: {value!r}. Keys must start with a lowercase letter; "
                "keys and values may hold only lowercase letters, digits, '_' and '-', "
                "at most 63 characters.",
            )
        if key.startswith("goog-"):
            raise ApiError("INVALID_ARGUMENT", f"Label key {key!r} uses the reserved prefix goog-.")


def _order_jobs(records: list[JobRecord], order_by: str) -> list[JobRecord]:
    order = " ".join((order_by or "create_time").split())
    keys: dict[str, Callable[[JobRecord], Any]] = {
        "name": lambda record: record.name,
        "create_time": lambda record: (record.created_at, record.name),
    }
    field_name, _, direction = order.partition(" ")
    if field_name not in keys or direction not in ("", "desc", "asc"):
        raise ApiError("INVALID_ARGUMENT", f"Unsupported order_by {order_by!r}")
    return sorted(records, key=keys[field_name], reverse=direction == "desc")


# --- gRPC front ----------------------------------------------------------------------------


def _grpc_handler(
    core: FakeGoogleBatch,
    method: str,
    call: Callable[[Any], Any],
    request_type: Any,
    serialize: Callable[[Any], bytes],
) -> grpc.RpcMethodHandler:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        metadata = dict(context.invocation_metadata())
        try:
            core.record_call("grpc", method, metadata.get("authorization"))
            result = call(request)
            core.answer_lost(method)
            return result
        except ApiError as error:
            context.abort(error.grpc_code, error.message)

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=request_type.deserialize, response_serializer=serialize
    )


def start_grpc(core: FakeGoogleBatch) -> tuple[grpc.Server, int]:
    """Serve BatchService and LoggingServiceV2.ListLogEntries on 127.0.0.1 (plaintext)."""
    operation = operations_pb2.Operation.SerializeToString
    batch_methods = {
        "CreateJob": _grpc_handler(
            core, "CreateJob", core.create_job, batch_v1.CreateJobRequest, batch_v1.Job.serialize
        ),
        "GetJob": _grpc_handler(
            core, "GetJob", core.get_job, batch_v1.GetJobRequest, batch_v1.Job.serialize
        ),
        "ListJobs": _grpc_handler(
            core,
            "ListJobs",
            core.list_jobs,
            batch_v1.ListJobsRequest,
            batch_v1.ListJobsResponse.serialize,
        ),
        "CancelJob": _grpc_handler(
            core, "CancelJob", core.cancel_job, batch_v1.CancelJobRequest, operation
        ),
        "DeleteJob": _grpc_handler(
            core, "DeleteJob", core.delete_job, batch_v1.DeleteJobRequest, operation
        ),
    }
    logging_methods = {
        "ListLogEntries": _grpc_handler(
            core,
            "ListLogEntries",
            core.list_log_entries,
            logging_types.ListLogEntriesRequest,
            logging_types.ListLogEntriesResponse.serialize,
        )
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "google.cloud.batch.v1.BatchService", batch_methods
            ),
            grpc.method_handlers_generic_handler(
                "google.logging.v2.LoggingServiceV2", logging_methods
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


# --- REST front ----------------------------------------------------------------------------

_PARENT = r"projects/[^/]+/locations/[^/]+"
_REST_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(rf"^/v1/(?P<parent>{_PARENT})/jobs$"), "CreateJob"),
    ("GET", re.compile(rf"^/v1/(?P<parent>{_PARENT})/jobs$"), "ListJobs"),
    ("GET", re.compile(rf"^/v1/(?P<name>{_PARENT}/jobs/[^/:]+)$"), "GetJob"),
    ("DELETE", re.compile(rf"^/v1/(?P<name>{_PARENT}/jobs/[^/:]+)$"), "DeleteJob"),
    ("POST", re.compile(rf"^/v1/(?P<name>{_PARENT}/jobs/[^/:]+):cancel$"), "CancelJob"),
    ("POST", re.compile(r"^/v2/entries:list$"), "ListLogEntries"),
    ("GET", re.compile(r"^/storage/v1/b/(?P<bucket>[^/]+)/o$"), "ListObjects"),
]


# Standard parameters any Google REST API accepts; they say nothing about the request.
SYSTEM_QUERY_PARAMETERS = ("prettyPrint", "fields", "key", "quotaUser", "$fields", "callback")


def _route(verb: str, path: str) -> tuple[str, re.Match[str]] | None:
    for route_verb, pattern, method in _REST_ROUTES:
        match = pattern.match(path)
        if route_verb == verb and match:
            return method, match
    return None


def _message_to_json(message: Any, integer_enums: bool) -> str:
    """JSON as Google's REST gateway writes it: no default-valued fields, enum names."""
    if isinstance(message, dict):  # an API without protocol buffers (Cloud Storage JSON)
        return json.dumps(message)
    if isinstance(message, proto.Message):
        message = type(message).pb(message)
    return json_format.MessageToJson(
        message,
        use_integers_for_enums=integer_enums,
        always_print_fields_with_no_presence=False,
        indent=None,
    )


def _request_from(cls: Any, fields: Mapping[str, Any]) -> Any:
    try:
        return cls.from_json(json.dumps(dict(fields)))
    except json_format.ParseError as error:
        raise ApiError("INVALID_ARGUMENT", f"Invalid JSON payload received. {error}") from error


def _rest_call(
    core: FakeGoogleBatch, method: str, match: re.Match[str], query: dict[str, str], body: str
) -> Any:
    try:
        payload = json.loads(body) if body.strip() else {}
    except json.JSONDecodeError as error:
        raise ApiError("INVALID_ARGUMENT", f"Invalid JSON payload received. {error}") from error
    if not isinstance(payload, dict):
        raise ApiError("INVALID_ARGUMENT", "Invalid JSON payload received: not an object.")
    path = {key: unquote(value) for key, value in match.groupdict().items()}
    if method == "ListObjects":
        return core.list_objects(path["bucket"], query)
    if method == "CreateJob":
        request = _request_from(batch_v1.CreateJobRequest, {**query, **path, "job": payload})
        return core.create_job(request)
    if method == "ListJobs":
        return core.list_jobs(_request_from(batch_v1.ListJobsRequest, {**query, **path}))
    if method == "GetJob":
        return core.get_job(_request_from(batch_v1.GetJobRequest, {**query, **path}))
    if method == "DeleteJob":
        return core.delete_job(_request_from(batch_v1.DeleteJobRequest, {**query, **path}))
    if method == "CancelJob":
        fields = {**payload, **query, **path}
        return core.cancel_job(_request_from(batch_v1.CancelJobRequest, fields))
    request = _request_from(logging_types.ListLogEntriesRequest, payload)
    return core.list_log_entries(request)


def _rest_handler(core: FakeGoogleBatch) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test output is no place for an access log."""

        def _respond(self, code: int, body: str) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, error: ApiError) -> None:
            body = {"error": {"code": error.http_code, "message": error.message}}
            body["error"]["status"] = error.status
            self._respond(error.http_code, json.dumps(body))

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            url = urlsplit(self.path)
            raw_query = parse_qs(url.query, keep_blank_values=True)
            alt = raw_query.pop("$alt", raw_query.pop("alt", [""]))[0]
            for name in SYSTEM_QUERY_PARAMETERS:
                raw_query.pop(name, None)
            query = {key: values[-1] for key, values in raw_query.items()}
            routed = _route(self.command, url.path)
            if routed is None:
                error = ApiError("NOT_FOUND", f"No route for {self.command} {url.path}")
                return self._error(error)
            method, match = routed
            try:
                core.record_call("rest", method, self.headers.get("Authorization"))
                result = _rest_call(core, method, match, query, body)
                core.answer_lost(method)
            except ApiError as error:
                return self._error(error)
            except Exception as error:  # a bug in the fake: say so instead of hanging
                return self._error(ApiError("INTERNAL", f"{type(error).__name__}: {error}"))
            self._respond(200, _message_to_json(result, "enum-encoding=int" in alt))

        do_GET = do_POST = do_DELETE = _dispatch

    return Handler


def _metadata_handler(core: FakeGoogleBatch) -> type[BaseHTTPRequestHandler]:
    """The GCE metadata paths google-auth reads for Compute Engine credentials."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet, as above."""

        def _respond(self, code: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Metadata-Flavor", "Google")
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path = url.path
            with core.lock:
                core.metadata_requests[path] += 1
            if path == "/":
                return self._respond(200, "computeMetadata/\n", "application/text")
            if self.headers.get("Metadata-Flavor") != "Google":
                return self._respond(403, "Missing Metadata-Flavor:Google header.", "text/html")
            prefix = "/computeMetadata/v1/"
            key = path[len(prefix) :] if path.startswith(prefix) else None
            accounts = "instance/service-accounts/"
            account = ""
            if key and key.startswith(accounts):
                account, _, key = key[len(accounts) :].partition("/")
                if account not in ("default", SERVICE_ACCOUNT_EMAIL):
                    return self._respond(404, "Not found", "text/html")
                key = f"{accounts}default/{key}"
            text = {
                "project/project-id": core.project,
                "project/numeric-project-id": PROJECT_NUMBER,
                "universe/universe-domain": "googleapis.com",
                f"{accounts}default/email": SERVICE_ACCOUNT_EMAIL,
            }
            documents = {
                f"{accounts}default/token": {
                    "access_token": ACCESS_TOKEN,
                    "expires_in": 3599,
                    "token_type": "Bearer",
                },
                f"{accounts}default/": {
                    "aliases": ["default"],
                    "email": SERVICE_ACCOUNT_EMAIL,
                    "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                },
            }
            if key in text:
                return self._respond(200, text[key], "application/text")
            if key in documents:
                return self._respond(200, json.dumps(documents[key]), "application/json")
            return self._respond(404, "Not found", "text/html")

        def do_POST(self) -> None:
            """The OAuth 2 token endpoint (``token_uri`` of a service-account key)."""
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            if urlsplit(self.path).path != "/token":
                return self._respond(404, "Not found", "text/html")
            form = {key: values[-1] for key, values in parse_qs(body).items()}
            answer = core.exchange(form)
            if answer is None:
                error = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
                return self._respond(400, json.dumps(error), "application/json")
            return self._respond(200, json.dumps(answer), "application/json")

    return Handler


def _start_http(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


# --- the whole fake ------------------------------------------------------------------------


class GoogleCloudFake(FakeGoogleBatch):
    """The core plus its three servers (gRPC, REST, metadata), all on 127.0.0.1."""

    def __init__(self, project: str = DEFAULT_PROJECT, step_seconds: float = 0.05) -> None:
        super().__init__(project=project, step_seconds=step_seconds)
        self._grpc: grpc.Server | None = None
        self._rest: ThreadingHTTPServer | None = None
        self._metadata: ThreadingHTTPServer | None = None
        self._sdk_config: str | None = None
        self.grpc_target = ""
        self.rest_endpoint = ""
        self.metadata_host = ""

    def start(self) -> Self:
        self._grpc, port = start_grpc(self)
        self.grpc_target = f"127.0.0.1:{port}"
        self._rest = _start_http(_rest_handler(self))
        self.rest_endpoint = f"http://127.0.0.1:{self._rest.server_address[1]}"
        self._metadata = _start_http(_metadata_handler(self))
        self.metadata_host = f"127.0.0.1:{self._metadata.server_address[1]}"
        # An empty gcloud config folder, so a developer's own gcloud login is never used.
        self._sdk_config = tempfile.mkdtemp(prefix="fake-gcloud-config-")
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=None)
            self._grpc = None
        for server in (self._rest, self._metadata):
            if server is not None:
                server.shutdown()
                server.server_close()
        self._rest = self._metadata = None
        if self._sdk_config:
            shutil.rmtree(self._sdk_config, ignore_errors=True)
            self._sdk_config = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def token_uri(self) -> str:
        """The token endpoint a service-account key made for this fake names."""
        return f"http://{self.metadata_host}/token"

    def service_account_key(self, email: str) -> str:
        """A new service-account key file (JSON) for ``email``, known to the fake."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public = (
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        with self.lock:
            self.service_accounts[email] = public
        return json.dumps(
            {
                "type": "service_account",
                "project_id": self.project,
                "private_key_id": uuid.uuid4().hex,
                "private_key": pem,
                "client_email": email,
                "client_id": "1234567890",
                "token_uri": self.token_uri,
            }
        )

    def metadata_env(self) -> dict[str, str]:
        """Variables under which Application Default Credentials resolve to the fake
        metadata server: Compute Engine credentials and project ``self.project``.

        Also remove :data:`ADC_UNSET_ENV` (see :meth:`subprocess_env`). google-auth reads
        GCE_METADATA_HOST once, when ``google.auth.compute_engine`` is first imported, so
        set these before that in a new process; in this process use
        :meth:`apply_metadata_env`.
        """
        no_proxy = ",".join(
            part for part in (os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost") if part
        )
        return {
            "GCE_METADATA_HOST": self.metadata_host,
            "GCE_METADATA_ROOT": self.metadata_host,
            "GCE_METADATA_IP": self.metadata_host,
            "GCE_METADATA_MTLS_MODE": "none",
            "NO_GCE_CHECK": "false",
            # Empty counts as unset for google-auth: no key file.
            "GOOGLE_APPLICATION_CREDENTIALS": "",
            # An empty gcloud config folder: never a developer's own gcloud login.
            "CLOUDSDK_CONFIG": self._sdk_config or "",
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }

    def subprocess_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """A whole environment for a child process (a worker, say) that should use ADC
        from the fake: ``base`` (default ``os.environ``) without :data:`ADC_UNSET_ENV`,
        plus :meth:`metadata_env`."""
        env = {
            key: value
            for key, value in (os.environ if base is None else base).items()
            if key not in ADC_UNSET_ENV
        }
        return env | self.metadata_env()

    def apply_metadata_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point ADC in this process at the fake, including google-auth's import-time
        copies of GCE_METADATA_HOST and NO_GCE_CHECK."""
        for key in ADC_UNSET_ENV:
            monkeypatch.delenv(key, raising=False)
        for key, value in self.metadata_env().items():
            monkeypatch.setenv(key, value)
        from google.auth.compute_engine import _metadata

        monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", self.metadata_host)
        monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", False)


# --- pytest fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def google_cloud() -> Iterator[GoogleCloudFake]:
    """The fake's servers, started once per test session."""
    with GoogleCloudFake() as fake:
        yield fake


@pytest.fixture
def fake_google(google_cloud: GoogleCloudFake) -> Iterator[GoogleCloudFake]:
    """The session's fake, emptied and with default hooks, for one test."""
    google_cloud.reset()
    yield google_cloud
    google_cloud.reset()


@pytest.fixture
def google_adc(fake_google: GoogleCloudFake, monkeypatch: pytest.MonkeyPatch) -> GoogleCloudFake:
    """:func:`fake_google`, with Application Default Credentials pointed at its metadata
    server for the duration of the test."""
    fake_google.apply_metadata_env(monkeypatch)
    return fake_google
