"""The Celery tasks: thin wrappers that take a run id and call ``workers.execution``."""

from __future__ import annotations

from functools import cache

from celery import current_app, shared_task

from wes_gateway.infra.db import Database
from wes_gateway.infra.logs import about_run
from wes_gateway.infra.queue import (
    CANCEL_RUN,
    CHECK_COMPUTE_ENV,
    POLL_ACTIVE_RUNS,
    PURGE_RUN,
    REFRESH_LOG,
    SUBMIT_RUN,
    SWEEP,
    send,
)
from workers import execution


@cache
def _executor() -> execution.Executor:
    # Built on first use in each worker process (after any fork), never shared across one.
    settings = current_app.conf.wes_gateway_settings
    return execution.Executor(db=Database.from_settings(settings), settings=settings)


@shared_task(name=SUBMIT_RUN, acks_late=True)
def submit_run(run_id: str) -> None:
    with about_run(run_id):
        execution.submit(_executor(), run_id)


@shared_task(name=CANCEL_RUN, acks_late=True)
def cancel_run(run_id: str) -> None:
    with about_run(run_id):
        execution.cancel(_executor(), run_id)


@shared_task(name=PURGE_RUN, acks_late=True)
def purge_run(run_id: str) -> None:
    with about_run(run_id):
        execution.purge_deleted(_executor(), run_id)


@shared_task(name=POLL_ACTIVE_RUNS, acks_late=True)
def poll_active_runs() -> int:
    return execution.poll_active(_executor())


@shared_task(name=SWEEP, acks_late=True)
def sweep() -> list[str]:
    return execution.sweep(_executor(), lambda run_id: send(current_app, SUBMIT_RUN, run_id))


@shared_task(name=REFRESH_LOG, acks_late=True)
def refresh_log(run_id: str) -> None:
    with about_run(run_id):
        execution.refresh_log(_executor(), run_id)


@shared_task(name=CHECK_COMPUTE_ENV, acks_late=True)
def check_compute_env(env_id: str) -> None:
    execution.check_compute_env(_executor(), env_id)
