"""Handing work to the workers, by task name, after the run's row is committed.

A failed publish is logged, not raised: the run is already stored, and the sweeper
re-sends the work of runs no worker took (DESIGN rule 5).
"""

from __future__ import annotations

import time
from pathlib import Path

from celery import Celery

from wes_gateway.domain import run_files
from wes_gateway.domain.models import Run
from wes_gateway.domain.runs import ready_to_purge
from wes_gateway.domain.states import State, is_terminal
from wes_gateway.infra.queue import (
    CANCEL_RUN,
    CHECK_COMPUTE_ENV,
    PURGE_RUN,
    REFRESH_LOG,
    SUBMIT_RUN,
    send,
)

# While someone reads a cloud head job's console, a worker copies new lines at most this
# often; nobody reading, no calls to the cloud's log service until the run ends.
LOG_REFRESH_SECONDS = 2.0


def submit(app: Celery, run_id: str) -> bool:
    return send(app, SUBMIT_RUN, run_id)


def cancel(app: Celery, run: Run) -> bool:
    """Have a worker stop the run's job; only a CANCELING run has one to stop (a queued
    run is cancelled outright, a finished one has nothing left)."""
    if run.state is not State.CANCELING:
        return False
    return send(app, CANCEL_RUN, run.id)


def deleted(app: Celery, run: Run) -> bool:
    """Have a worker remove a run just deleted (its folder, then its row), or first stop
    its head job (the run is removed once the job has stopped). If the message is lost,
    the sweep removes the run all the same: it stays hidden meanwhile."""
    if ready_to_purge(run):
        return send(app, PURGE_RUN, run.id)
    return cancel(app, run)


def check_compute_env(app: Celery, env_id: str) -> bool:
    """Have a worker try the new compute environment's cloud settings (it is CREATING
    until then, AVAILABLE or INVALID after)."""
    return send(app, CHECK_COMPUTE_ENV, env_id)


def refresh_log(app: Celery, run: Run, run_dir: Path) -> bool:
    """Have a worker copy the new console lines of an active head job into the run folder,
    where the log endpoints read them (a few seconds behind at most). Where the head job
    writes them there itself (its backend says so), the worker has nothing to do."""
    if is_terminal(run.state) or not run.backend_handle:
        return False
    marker = run_files.console_request_file(run_dir)
    try:
        if time.time() - marker.stat().st_mtime < LOG_REFRESH_SECONDS:
            return False
    except FileNotFoundError:
        run_dir.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return send(app, REFRESH_LOG, run.id, expires=30)
