"""Figure 4: trace ingestion, task records per second through
`PUT /api/trace/{id}/progress` (100 records a call, as Nextflow batches them), against the
physical limit of the same database: a raw `executemany` insert of the same rows.

One client sends the calls back to back, each with 100 new task records, to a server on
a scratch data folder (SQLite, or a throwaway PostgreSQL database beside the one named).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from sqlalchemy import create_engine, text

from bench.measure import seconds_together
from bench.results import Figure, Report
from bench.server import fresh_folder, running_gateway, throwaway_database

PIPELINES = 4
TASK = {
    "status": "COMPLETED",
    "hash": "2e/a112fb",
    "exit": 0,
    "process": "sayHello",
    "tag": None,
    "module": [],
    "container": "quay.io/nextflow/bash",
    "attempt": 1,
    "script": "echo 'Ciao world!'",
    "scratch": None,
    "workdir": "/work/2e/a112fb713ff5",
    "queue": "default",
    "cpus": 1,
    "memory": None,
    "disk": None,
    "time": None,
    "env": None,
    "submit": "2026-05-06T12:04:20.558Z",
    "start": "2026-05-06T12:04:50.587Z",
    "complete": "2026-05-06T12:04:51.690Z",
    "duration": 31132,
    "realtime": 11,
    "pcpu": 34.8,
    "rchar": 89020,
    "wchar": 196,
    "peakRss": 89354,
    "nativeId": "5d1bd85c",
    "executor": "local",
}


def _body(call: int) -> bytes:
    tasks = [{**TASK, "taskId": call * 100 + n, "name": f"sayHello ({n})"} for n in range(100)]
    return json.dumps({"tasks": tasks, "progress": {"succeeded": call}}).encode()


def _ingest(api: str, token: str, calls: int, pipelines: int) -> tuple[list[str], float]:
    """``pipelines`` runs report at once, each sending its ``calls`` progress calls one
    after another (as Nextflow does), the bodies encoded beforehand; returns the run ids
    and the seconds from the first call to the last answer."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    bodies = [_body(call) for call in range(calls)]
    with httpx.Client(headers=headers, timeout=60) as client:
        run_ids = []
        for _ in range(pipelines):
            run_id = client.post(
                f"{api}/trace/create",
                json={
                    "sessionId": "f56b8b10-b044-4d42-a7a3-769026f62283",
                    "runName": "bench",
                    "projectName": "nextflow-io/hello",
                    "repository": None,
                    "workflowId": None,
                },
            ).json()["workflowId"]
            client.put(f"{api}/trace/{run_id}/begin", json={"workflow": {"runName": "bench"}})
            run_ids.append(run_id)
    failures: list[str] = []

    def pipeline(run_id: str) -> Callable[[threading.Barrier], None]:
        def report(start: threading.Barrier) -> None:
            with httpx.Client(headers=headers, timeout=60) as client:
                start.wait()
                for body in bodies:
                    response = client.put(f"{api}/trace/{run_id}/progress", content=body)
                    if response.status_code != 200:
                        failures.append(response.text)

        return report

    elapsed = seconds_together([pipeline(run_id) for run_id in run_ids])
    assert not failures, failures[0]
    return run_ids, elapsed


def _raw_rate(url: str, run_id: str, calls: int) -> float:
    """Rows per second of a plain executemany insert of the same rows, same database."""
    engine = create_engine(url)
    statement = text(
        "INSERT INTO tasks (run_id, task_id, name, process, status, hash, native_id, workdir,"
        " exit_status, submit, start, complete, data, updated_at) VALUES (:run_id, :task_id,"
        " :name, :process, :status, :hash, :native_id, :workdir, :exit_status, :submit,"
        " :start, :complete, :data, :updated_at)"
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    started = time.perf_counter()
    for call in range(calls):
        rows = [
            {
                "run_id": run_id,
                "task_id": 10_000_000 + call * 100 + n,
                "name": f"t ({n})",
                "process": "sayHello",
                "status": "COMPLETED",
                "hash": "2e/a112fb",
                "native_id": "x",
                "workdir": "/w",
                "exit_status": 0,
                "submit": now,
                "start": now,
                "complete": now,
                "data": json.dumps({**TASK, "taskId": n}),
                "updated_at": now,
            }
            for n in range(100)
        ]
        with engine.begin() as connection:
            connection.execute(statement, rows)
    rate = calls * 100 / (time.perf_counter() - started)
    engine.dispose()
    return rate


def measure(
    database_url: str | None, calls: int, pipelines: int, workers: int = 1
) -> tuple[float, float]:
    """(records/s through the API, records/s of the raw insert)."""
    folder = fresh_folder()
    url, drop = throwaway_database(database_url, folder)
    try:
        with running_gateway(
            folder, url, workers=workers, WES_GATEWAY_EMBEDDED_WORKER="false"
        ) as gateway:
            run_ids, elapsed = _ingest(f"{gateway.base}/api", gateway.token, calls, pipelines)
        return calls * pipelines * 100 / elapsed, _raw_rate(url, run_ids[0], calls)
    finally:
        drop()


def report(report: Report, databases: dict[str, str | None], calls: int) -> None:
    for kind, url in databases.items():
        group = f"Trace ingestion ({kind}, 100 task records a call)"
        alone, _ = measure(url, calls, 1)
        one, raw = measure(url, calls, PIPELINES)
        two, _ = measure(url, calls, PIPELINES, workers=2)
        report.add(Figure(group, "PUT /trace/{id}/progress, one pipeline", "records/s", alone))
        for processes, rate in ((1, one), (2, two)):
            name = f"{PIPELINES} pipelines at once, {processes} API process"
            name += "es" if processes > 1 else ""
            sqlite = kind == "SQLite"
            report.add(
                Figure(
                    group,
                    f"PUT /trace/{{id}}/progress, {name}",
                    "records/s",
                    rate,
                    None,
                    "≥ 20,000/s" if sqlite else "",
                    rate >= 20_000 if sqlite else None,
                )
            )
            report.add(
                Figure(
                    group,
                    f"{name} ÷ raw insert",
                    "×",
                    rate / raw,
                    None,
                    "≥ 0.60",
                    rate / raw >= 0.60,
                )
            )
        report.add(Figure(group, "raw executemany insert of the same rows", "records/s", raw))
