"""Handing work to the workers, by task name, after the run's row is committed.

A failed publish is logged, not raised: the run is already stored, and the sweeper
re-sends the work of runs no worker took (DESIGN rule 5).
"""

from __future__ import annotations

import logging

from celery import Celery

from wes_gateway.models import Run
from wes_gateway.states import State
from workers.celery_app import CANCEL_RUN, SUBMIT_RUN

log = logging.getLogger(__name__)


def send(app: Celery, task: str, run_id: str) -> bool:
    try:
        app.send_task(task, args=[run_id])
    except Exception:  # the broker is down or refused: the sweeper will re-send
        log.warning("could not enqueue %s for run %s", task, run_id, exc_info=True)
        return False
    return True


def submit(app: Celery, run_id: str) -> bool:
    return send(app, SUBMIT_RUN, run_id)


def cancel(app: Celery, run: Run) -> bool:
    """Have a worker stop the run's job; only a CANCELING run has one to stop (a queued
    run is cancelled outright, a finished one has nothing left)."""
    if run.state is not State.CANCELING:
        return False
    return send(app, CANCEL_RUN, run.id)
