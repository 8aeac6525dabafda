"""The workers' Celery application, for ``celery -A workers.celery_app worker``: built
from the environment's settings by the factory in ``wes_gateway.infra.queue``."""

from __future__ import annotations

from wes_gateway.infra.queue import make_celery

app = make_celery()
