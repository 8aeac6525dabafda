"""Whether this API process can do its work (/readyz): its database answers and its
broker takes connections; and the live figures /metrics reads from them."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text

from wes_gateway.http.runtime import Runtime

BROKER_TIMEOUT = 2.0  # seconds


def _timed(check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure means not ready; say which
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
    return {"ok": True, "seconds": round(time.perf_counter() - started, 4)}


def _database(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        session.execute(text("SELECT 1"))


def _broker(runtime: Runtime) -> None:
    with runtime.celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT)


def check(runtime: Runtime) -> dict[str, dict[str, Any]]:
    return {
        "database": _timed(lambda: _database(runtime)),
        "broker": _timed(lambda: _broker(runtime)),
    }


def queue_depth(runtime: Runtime) -> int | None:
    """Messages waiting in this deployment's queue, where the broker tells (Redis,
    RabbitMQ and the embedded broker all do)."""
    with runtime.celery.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT)
        declared = connection.default_channel.queue_declare(
            queue=runtime.settings.queue, passive=True
        )
        return int(declared.message_count)
