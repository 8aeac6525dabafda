"""Timing requests and summarising the times."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence

import httpx


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def request_times(
    client: httpx.Client, url: str, count: int, *, warmup: int = 5, check: Callable | None = None
) -> list[float]:
    """Milliseconds each of ``count`` GETs of ``url`` took (after ``warmup`` untimed ones),
    one after another on one kept-alive connection."""
    for _ in range(warmup):
        client.get(url).raise_for_status()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        if check is not None:
            check(response)
    return times


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def seconds_together(jobs: Sequence[Callable[[threading.Barrier], None]]) -> float:
    """Run each job in a thread of its own; a job calls ``start.wait()`` once it is ready
    (connected, warmed up). Returns the seconds from all being ready to the last one done."""
    start = threading.Barrier(len(jobs) + 1)
    threads = [threading.Thread(target=job, args=(start,)) for job in jobs]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began
