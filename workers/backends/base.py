"""The contract every compute backend keeps.

A backend starts a run's head job (``nextflow run``), reports on many head jobs at once,
stops one, and reads its console log. It receives a frozen snapshot of the run, never a
database row, so no session is held across a slow call; it hands back an opaque handle
that is stored on the run, so any worker (after any restart) can poll or cancel the job.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wes_gateway.domain.launch import RunSnapshot
from wes_gateway.domain.run_outputs import Listing
from wes_gateway.domain.states import BackendStatus


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


@dataclass(frozen=True)
class OutputsQuery:
    """What listing a run's outdir needs (domain/run_outputs.py)."""

    run_id: str
    outdir: str  # params.outdir as launched
    limit: int  # the most files listed
    run_dir: Path  # the run's folder on the service's side
    data_dir: Path  # the service's data folder (never listed outside run_dir)
    work_dir: str | None = None  # Nextflow's work dir, when the trace reported it


class SubmitError(Exception):
    """The platform refused the head job for good (invalid parameters, access denied): a
    SYSTEM_ERROR, with this message."""


class SubmitUnknown(Exception):
    """The platform's answer to a create was lost (a timeout, UNAVAILABLE, a 5xx): the job
    may or may not exist. The submit is retried later, looking for the job first."""


class ClaimLost(Exception):
    """Raised by a submit's ``claim`` when the run is no longer this worker's to start
    (another worker took it over, or it was cancelled): nothing was created."""


def no_claim() -> None:
    """A submit outside any worker's claim (tests, tools)."""


class Backend(abc.ABC):
    platform: str
    # Whether the head job writes its console file into the run folder itself (a local
    # process does). Otherwise the console lives in the platform's log service and the
    # workers copy it into the run folder while someone reads it and when the job ends.
    writes_console_to_run_folder: bool = False

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Any, config: dict[str, Any]) -> Backend:
        """Build from the service settings and the compute environment's config."""

    def check(self) -> str | None:
        """Try the compute environment's settings against the platform (the queue, the
        location, the credentials). Returns what is wrong, or None when it can take runs."""
        return None

    @abc.abstractmethod
    def submit(self, run: RunSnapshot, claim: Callable[[], None] = no_claim) -> Submission:
        """Start the head job, or find the one already started for this run (a retried
        submit must never start a second). ``claim`` is called right before each call
        that creates a job (the worker renews its hold on the run there; it raises
        ClaimLost if the run is no longer its own). Each such call is made once, never
        retried, and within the settings' ``create_budget``. Raises SubmitError when the
        platform refuses the job, SubmitUnknown when its answer was lost."""

    @abc.abstractmethod
    def find(self, run: RunSnapshot) -> str | None:
        """The handle of a head job already started for this run, if there is one."""

    def adopt(self, run: RunSnapshot) -> Submission | None:
        """The head job already started for this run, if any, as a submit would have
        returned it; looks only, never creates."""
        handle = self.find(run)
        return None if handle is None else Submission(handle=handle, command=self.command(run))

    @abc.abstractmethod
    def command(self, run: RunSnapshot) -> list[str]:
        """The nextflow argv the head job runs (the run log's cmd)."""

    @abc.abstractmethod
    def poll(self, handles: Sequence[str]) -> dict[str, JobReport]:
        """Report on many head jobs in as few calls as the platform allows."""

    @abc.abstractmethod
    def cancel(self, handle: str, *, force: bool = False) -> bool:
        """Ask the head job to stop (``force``: kill it now). Returns whether there was
        anything left to stop."""

    def release(self, handle: str) -> None:  # noqa: B027 - most platforms keep nothing
        """Let go of an ended job's records on the platform, once its log is copied."""

    def list_outputs(self, query: OutputsQuery) -> Listing | None:
        """The files under the run's outdir, at most ``query.limit`` (plus whether there
        were more); None when this platform cannot list that outdir."""
        return None

    @abc.abstractmethod
    def read_log(self, handle: str, cursor: str | None) -> tuple[list[str], str | None]:
        """Console lines after ``cursor``, and the cursor to continue from."""
