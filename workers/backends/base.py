"""The contract every compute backend keeps.

A backend starts a run's head job (``nextflow run``), reports on many head jobs at once,
stops one, and reads its console log. It receives a frozen snapshot of the run, never a
database row, so no session is held across a slow call; it hands back an opaque handle
that is stored on the run, so any worker (after any restart) can poll or cancel the job.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wes_gateway.states import State


@dataclass(frozen=True)
class RunSnapshot:
    """What a backend needs to know about a run, copied out of the database."""

    run_id: str
    pipeline: str  # an owner/repo name, an https git URL, or a path in the launch dir
    pipeline_is_local: bool
    run_dir: Path
    params: Mapping[str, Any] = field(default_factory=dict)
    revision: str | None = None
    profile: str | None = None
    config_text: str | None = None
    entry: str | None = None
    main_script: str | None = None
    resume: str | None = None  # "true", or the session id to resume
    latest: bool = False
    stub_run: bool = False
    run_name: str | None = None
    session_id: str | None = None
    work_dir: str | None = None  # -w: the work dir of the session resumed, or one asked for
    cache_dir: Path | None = None  # NXF_CACHE_DIR of a local run: its session's .nextflow
    head_job_cpus: int | None = None  # the launch's own head-job resources, if it set them
    head_job_memory_mb: int | None = None
    tower_url: str | None = None  # the trace endpoint (-with-tower); None: not traced
    tower_token: str | None = None  # the run-scoped token for the trace calls
    compute_config: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)


class BackendStatus(enum.StrEnum):
    PENDING = "PENDING"  # accepted by the backend, not started
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"  # nextflow exited 0
    FAILED = "FAILED"  # nextflow exited non-zero: the workflow failed
    SYSTEM_FAILED = "SYSTEM_FAILED"  # the head job could not run or vanished
    PREEMPTED = "PREEMPTED"  # the platform took the machine back
    STOPPED = "STOPPED"  # stopped on our request


# The one mapping from what a backend reports to the run's WES state.
STATE_OF: dict[BackendStatus, State] = {
    BackendStatus.PENDING: State.INITIALIZING,
    BackendStatus.RUNNING: State.RUNNING,
    BackendStatus.SUCCEEDED: State.COMPLETE,
    BackendStatus.FAILED: State.EXECUTOR_ERROR,
    BackendStatus.SYSTEM_FAILED: State.SYSTEM_ERROR,
    BackendStatus.PREEMPTED: State.PREEMPTED,
    BackendStatus.STOPPED: State.CANCELED,
}


@dataclass(frozen=True)
class JobReport:
    status: BackendStatus
    exit_code: int | None = None
    message: str | None = None  # why, for the run's system logs

    @property
    def finished(self) -> bool:
        return self.status not in (BackendStatus.PENDING, BackendStatus.RUNNING)


@dataclass(frozen=True)
class Submission:
    handle: str
    command: list[str]  # the nextflow argv, shown as the run log's cmd
    started: bool = False  # the head job is already running (not waiting for a machine)


class SubmitError(Exception):
    """The head job could not be started (a SYSTEM_ERROR, with this message)."""


class Backend(abc.ABC):
    platform: str

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Any, config: dict[str, Any]) -> Backend:
        """Build from the service settings and the compute environment's config."""

    def check(self) -> str | None:
        """Try the compute environment's settings against the platform (the queue, the
        location, the credentials). Returns what is wrong, or None when it can take runs."""
        return None

    @abc.abstractmethod
    def submit(self, run: RunSnapshot) -> Submission:
        """Start the head job, or find the one already started for this run (a retried
        submit must never start a second). Raises SubmitError when it cannot start."""

    @abc.abstractmethod
    def find(self, run: RunSnapshot) -> str | None:
        """The handle of a head job already started for this run, if there is one."""

    @abc.abstractmethod
    def poll(self, handles: Sequence[str]) -> dict[str, JobReport]:
        """Report on many head jobs in as few calls as the platform allows."""

    @abc.abstractmethod
    def cancel(self, handle: str, *, force: bool = False) -> bool:
        """Ask the head job to stop (``force``: kill it now). Returns whether there was
        anything left to stop."""

    def release(self, handle: str) -> None:  # noqa: B027 - most platforms keep nothing
        """Let go of an ended job's records on the platform, once its log is copied."""

    @abc.abstractmethod
    def read_log(self, handle: str, cursor: str | None) -> tuple[list[str], str | None]:
        """Console lines after ``cursor``, and the cursor to continue from."""
