"""The Celery application, configured from the same settings as the API."""

from __future__ import annotations

from celery import Celery

from wes_gateway.config import Settings


def broker_url(settings: Settings) -> str:
    if settings.broker_url:
        return settings.broker_url
    # The embedded default needs no server: kombu's SQLAlchemy transport on a file.
    return f"sqla+sqlite:///{(settings.data_dir / 'broker.db').resolve()}"


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or Settings()
    app = Celery("wes_gateway", broker=broker_url(settings))
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        timezone="UTC",
    )
    return app


app = make_celery()
