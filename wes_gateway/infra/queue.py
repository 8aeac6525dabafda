"""The queue between the API and the workers: task names, routes and the periodic
schedule, declared here in one place; the factory of the Celery app, configured from the
same settings as the API (no app is built on import); and ``send``, by task name. The API
side sends through it and never imports the tasks or the backends; the workers' app
(``workers.celery_app``) is built by the same factory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import Celery, signals

from wes_gateway.infra import embedded_broker, logs
from wes_gateway.infra.config import Settings

log = logging.getLogger(__name__)

SUBMIT_RUN = "workers.tasks.submit_run"
CANCEL_RUN = "workers.tasks.cancel_run"
POLL_ACTIVE_RUNS = "workers.tasks.poll_active_runs"
SWEEP = "workers.tasks.sweep"
REFRESH_LOG = "workers.tasks.refresh_log"
CHECK_COMPUTE_ENV = "workers.tasks.check_compute_env"
PURGE_RUN = "workers.tasks.purge_run"


def broker_folder(settings: Settings) -> Path:
    return (settings.data_dir / "broker").resolve()


def ensure_broker_folders(settings: Settings) -> None:
    if not settings.broker_url:
        for sub in ("queue", "control"):
            (broker_folder(settings) / sub).mkdir(parents=True, exist_ok=True)


def _broker(settings: Settings) -> tuple[str, dict]:
    if settings.broker_url:
        return settings.broker_url, {}
    # The embedded default needs no server: a folder of message files that every process
    # on this host shares (kombu's filesystem transport, written atomically).
    folder = broker_folder(settings)
    return f"{embedded_broker.SCHEME}://", {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        "polling_interval": 0.1,  # seconds between looks for new message files
    }


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or Settings()
    url, transport_options = _broker(settings)
    app = Celery("wes_gateway", broker=url, include=["workers.tasks"])
    app.conf.update(
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.queue,
        task_routes={
            name: {"queue": settings.queue}
            for name in (
                SUBMIT_RUN,
                CANCEL_RUN,
                POLL_ACTIVE_RUNS,
                SWEEP,
                REFRESH_LOG,
                CHECK_COMPUTE_ENV,
                PURGE_RUN,
            )
        },
        # A publish must not hang a request when the broker is down: the sweeper re-sends.
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
        beat_schedule={
            "poll-active-runs": {
                "task": POLL_ACTIVE_RUNS,
                "schedule": settings.poll_interval,
                "options": {"expires": max(settings.poll_interval * 2, 5)},
            },
            "sweep": {
                "task": SWEEP,
                "schedule": settings.sweep_interval,
                "options": {"expires": max(settings.sweep_interval * 2, 10)},
            },
        },
        beat_schedule_filename=str((settings.data_dir / "celerybeat-schedule").resolve()),
        worker_hijack_root_logger=False,
        # Task events, so Flower and `celery events` show the queue at work. Workers send
        # them; the API does not announce each task it sends (a second publish per POST).
        worker_send_task_events=True,
        task_send_sent_event=False,
        timezone="UTC",
    )
    app.conf.wes_gateway_settings = settings
    return app


@signals.setup_logging.connect
def _logging(loglevel=None, **_kwargs) -> None:
    """Workers and the scheduler log like the API: JSON lines unless on a terminal."""
    logs.configure(loglevel or "INFO")


@signals.worker_init.connect
@signals.beat_init.connect
def _prepare_broker(sender=None, **_kwargs) -> None:
    ensure_broker_folders(sender.app.conf.wes_gateway_settings)


def send(app: Celery, task: str, subject_id: str, **options: Any) -> bool:
    """Send ``task`` about one run (or compute environment), by its id."""
    try:
        app.send_task(task, args=[subject_id], **options)
    except Exception:  # the broker is down or refused: the sweeper will re-send
        log.warning("could not enqueue %s for %s", task, subject_id, exc_info=True)
        return False
    return True
