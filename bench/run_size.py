"""Figure 8: reading a run of many tasks. One run of each size reports its tasks through
`PUT /api/trace/{id}/progress` (100 records a call, 8 processes, most tasks completed,
some failed, cached, running or waiting, as a big nf-core run has them); then one client
times, for each run, `GET /api/workflow/{id}` (describe), `.../progress`, the first page
of `.../tasks` (50 tasks, the default order), its last page, a page sorted by start time
from the end, and a status search, one request after another on one kept-alive
connection. It does so in five rounds, the runs in turn within each, and keeps each
figure's round with the lowest median, so that a burst of the machine's other work does
not decide a ratio. sapporo keeps no task records, so these figures have no peer.
"""

from __future__ import annotations

import json

import httpx

from bench.measure import median, percentile, request_times
from bench.results import Figure, Report
from bench.server import fresh_folder, running_gateway, throwaway_database

PROCESSES = [f"NFCORE_RNASEQ:STEP_{n}" for n in range(8)]
TARGET = 1.2  # largest ÷ smallest, for describe, progress and the default tasks pages
PAGE = 50
ROUNDS = 5  # one in the quick mode


def _status(task_id: int) -> str:
    """Mostly completed, as a run is through most of its life."""
    slot = task_id % 100
    if slot < 2:
        return "FAILED"
    if slot < 7:
        return "CACHED"
    if slot < 10:
        return "RUNNING"
    if slot < 12:
        return "SUBMITTED"
    return "COMPLETED"


def _record(task_id: int) -> dict:
    status = _status(task_id)
    record = {
        "taskId": task_id,
        "name": f"{PROCESSES[task_id % 8]} (sample_{task_id})",
        "process": PROCESSES[task_id % 8],
        "status": status,
        "hash": f"{task_id % 256:02x}/{task_id:06x}",
        "executor": "slurm",
        "cpus": 2,
        "memory": 4 * 2**30,
        "submit": "2026-05-06T12:00:00.000Z",
        "workdir": f"/work/{task_id % 256:02x}/{task_id:030x}",
    }
    if status not in ("SUBMITTED",):
        record["start"] = f"2026-05-06T12:{task_id // 6000 % 60:02}:{task_id // 100 % 60:02}.000Z"
    if status in ("COMPLETED", "FAILED", "CACHED"):
        record.update(
            complete="2026-05-06T13:00:00.000Z",
            exit=0 if status != "FAILED" else 1,
            realtime=60_000,
            pcpu=180.0,
            peakRss=2**30,
            rchar=2**20,
            wchar=2**19,
        )
    return record


def _grow(client: httpx.Client, run_id: str, have: int, size: int) -> None:
    for first in range(have + 1, size + 1, 100):
        tasks = [_record(n) for n in range(first, min(first + 100, size + 1))]
        body = json.dumps({"tasks": tasks}).encode()
        response = client.put(
            f"/api/trace/{run_id}/progress",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        response.raise_for_status()


def _label(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size)


def reads(size: int) -> dict[str, str]:
    """What is timed at each size: name → path (under /api/workflow/{id})."""
    return {
        "describe": "",
        "progress": "/progress",
        "tasks page (first)": f"/tasks?max={PAGE}",
        "tasks page (last)": f"/tasks?max={PAGE}&offset={max(size - PAGE, 0)}",
        "tasks page sorted by start, from the end": (
            f"/tasks?max={PAGE}&offset={max(size - PAGE, 0)}&sortBy=start&sortDir=desc"
        ),
        "tasks search status:FAILED": f"/tasks?max={PAGE}&search=status:FAILED",
    }


TARGETED = ("describe", "progress", "tasks page (first)", "tasks page (last)")


def report(report: Report, databases: dict[str, str | None], sizes: list[int], requests: int):
    for kind, url in databases.items():
        folder = fresh_folder("wes-gateway-bench-tasks-")
        database_url, drop = throwaway_database(url, folder)
        group = f"Tasks of one run ({kind})"
        try:
            with running_gateway(folder, database_url) as gateway:
                with httpx.Client(
                    base_url=gateway.base, headers=gateway.headers, timeout=120
                ) as client:
                    run_ids = {size: _run_of(client, size) for size in sizes}
                    best = _timed(client, run_ids, requests, 1 if report.quick else ROUNDS)
                _add(report, group, sizes, best)
        finally:
            drop()


def _run_of(client: httpx.Client, size: int) -> str:
    created = client.post(
        "/api/trace/create", json={"projectName": "nf-core/rnaseq", "runName": f"n{size}"}
    )
    created.raise_for_status()
    run_id = created.json()["workflowId"]
    client.put(f"/api/trace/{run_id}/begin", json={"workflow": {}}).raise_for_status()
    _grow(client, run_id, 0, size)
    return run_id


def _timed(client: httpx.Client, run_ids: dict[int, str], requests: int, rounds: int) -> dict:
    """{(size, read): times of the round with the lowest median}, the sizes measured in
    turn within each round, so that the machine's other work falls on all of them alike."""
    best: dict[tuple[int, str], list[float]] = {}
    for _ in range(rounds):
        for size, run_id in run_ids.items():
            for name, path in reads(size).items():
                times = request_times(client, f"/api/workflow/{run_id}{path}", requests)
                if (size, name) not in best or median(times) < median(best[size, name]):
                    best[size, name] = times
    return best


def _add(report: Report, group: str, sizes: list[int], best: dict) -> None:
    for size in sizes:
        for name in reads(size):
            times = best[size, name]
            report.add(
                Figure(
                    group,
                    f"{name} at {_label(size)} tasks, p50",
                    "ms",
                    median(times),
                    note=f"p99 {percentile(times, 99):.1f} ms",
                )
            )
    smallest, largest = sizes[0], sizes[-1]
    for name in reads(largest):
        ratio = median(best[largest, name]) / median(best[smallest, name])
        report.add(
            Figure(
                group,
                f"{name}: p50 at {_label(largest)} ÷ at {_label(smallest)}",
                "×",
                ratio,
                target=f"≤ {TARGET}" if name in TARGETED else "",
                met=(ratio <= TARGET) if name in TARGETED and not report.quick else None,
            )
        )
