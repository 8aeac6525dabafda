"""Prometheus metrics: every metric the service exports is declared here, and /metrics
serves them (``prometheus_client``'s text format).

Counters and histograms are recorded where things happen: HTTP requests in the ASGI
middleware (``wes_gateway.http.request_metrics``), trace calls in the Tower handlers,
head-job starts in the state machine, poll cycles and cloud API calls in the workers.
Run counts by state and the broker's queue depth are read when scraped, so they are true
across every process.

Processes are separate (API workers, Celery workers): with ``PROMETHEUS_MULTIPROC_DIR``
set (``serve`` sets it for itself and the worker it runs), they share one folder of
samples and any API process's /metrics shows them all; without it each process reports
its own (``wes-gateway worker --metrics-port`` serves a worker's).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from wes_gateway.infra.config import METRICS_FOLDER_ENV

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
START_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)

HTTP_REQUESTS = Histogram(
    "wes_gateway_http_request_duration_seconds",
    "HTTP requests by route (the OpenAPI operation) and status.",
    ("route", "method", "status"),
    buckets=LATENCY_BUCKETS,
)
SUBMIT_TO_RUNNING = Histogram(
    "wes_gateway_submit_to_running_seconds",
    "From a run's acceptance to its head job running.",
    buckets=START_BUCKETS,
)
TRACE_CALLS = Counter(
    "wes_gateway_trace_calls_total",
    "Calls of nextflow -with-tower, by kind (create, begin, progress, heartbeat, complete).",
    ("kind",),
)
TRACE_TASK_RECORDS = Counter(
    "wes_gateway_trace_task_records_total", "Task records ingested from trace calls."
)
POLL_CYCLES = Histogram(
    "wes_gateway_poll_cycle_seconds",
    "One batched look at a compute environment's active head jobs, by platform.",
    ("platform",),
    buckets=LATENCY_BUCKETS,
)
CLOUD_CALLS = Counter(
    "wes_gateway_cloud_api_calls_total",
    "Calls to a cloud's API, by backend and operation.",
    ("backend", "operation"),
)


def run_started(created_at: datetime, started_at: datetime) -> None:
    SUBMIT_TO_RUNNING.observe(max(0.0, (started_at - created_at).total_seconds()))


def cloud_call(backend: str, operation: str) -> None:
    CLOUD_CALLS.labels(backend, operation).inc()


class timed:
    """``with timed(POLL_CYCLES.labels("aws-batch")):`` observes the block's duration."""

    def __init__(self, histogram) -> None:
        self.histogram = histogram

    def __enter__(self) -> timed:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_exc) -> None:
        self.histogram.observe(time.perf_counter() - self.started)


class _LiveCollector:
    """Figures read at scrape time: runs by WES state, the broker's queue depth."""

    def __init__(self, counts: Callable[[], dict[str, int]], depth: Callable[[], int | None]):
        self.counts = counts
        self.depth = depth

    def collect(self) -> Iterable[GaugeMetricFamily]:
        runs = GaugeMetricFamily("wes_gateway_runs", "Runs by WES state.", labels=("state",))
        try:
            for state, count in self.counts().items():
                runs.add_metric((state,), count)
        except Exception:
            log.warning("counting runs for /metrics failed", exc_info=True)
        yield runs
        try:
            depth = self.depth()
        except Exception:
            log.debug("the broker did not tell its queue depth", exc_info=True)
            depth = None
        if depth is not None:
            queue = GaugeMetricFamily(
                "wes_gateway_queue_depth", "Tasks waiting in this deployment's broker queue."
            )
            queue.add_metric((), depth)
            yield queue


def exposition(counts: Callable[[], dict[str, int]], depth: Callable[[], int | None]) -> bytes:
    """The /metrics body: this process's metrics (or every process's, in multiprocess
    mode) and the live figures."""
    registry = CollectorRegistry()
    if os.environ.get(METRICS_FOLDER_ENV):
        MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        for collector in list(REGISTRY._collector_to_names):
            registry.register(collector)
    registry.register(_LiveCollector(counts, depth))
    return generate_latest(registry)


CONTENT_TYPE = CONTENT_TYPE_LATEST
