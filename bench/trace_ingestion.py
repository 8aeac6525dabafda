"""Trace ingestion rate: task records per second through `PUT /api/trace/{id}/progress`
(100 records a call, as Nextflow batches them), against the physical limit of the same
database: a raw `executemany` insert of the same rows.

    python bench/trace_ingestion.py [--calls 200] [--database-url URL]

Starts `wes-gateway serve` on a fresh data folder (SQLite by default; a PostgreSQL URL
gets a throwaway database next to the one named) and one client that sends the calls
back to back, each with 100 new task records.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from gateway import fresh_folder, running_gateway
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

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


def _database(url: str | None, folder: Path) -> tuple[str, Callable[[], None]]:
    """The database to measure on, and how to drop it afterwards."""
    if not url:
        return f"sqlite:///{folder / 'bench.db'}", lambda: None
    base = make_url(url)
    name = f"wes_gateway_bench_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def _ingest(api: str, token: str, calls: int) -> tuple[str, float]:
    """Send the progress calls of one run; returns its id and the seconds they took."""
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
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
        started = time.perf_counter()
        for call in range(calls):
            tasks = [
                {**TASK, "taskId": call * 100 + n, "name": f"sayHello ({n})"} for n in range(100)
            ]
            response = client.put(
                f"{api}/trace/{run_id}/progress",
                json={"tasks": tasks, "progress": {"succeeded": call}},
            )
            assert response.status_code == 200, response.text
        return run_id, time.perf_counter() - started


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    folder = fresh_folder()
    url, drop = _database(args.database_url, folder)
    try:
        with running_gateway(
            folder, WES_GATEWAY_DATABASE_URL=url, WES_GATEWAY_EMBEDDED_WORKER="false"
        ) as (base, token):
            run_id, elapsed = _ingest(f"{base}/api", token, args.calls)
        ours = args.calls * 100 / elapsed
        raw = _raw_rate(url, run_id, args.calls)
    finally:
        drop()
    kind = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"trace ingestion on {kind}, {args.calls} progress calls of 100 task records:")
    print(
        f"  through the API   {ours:10,.0f} records/s  "
        f"({elapsed / args.calls * 1000:.1f} ms a call)"
    )
    print(f"  raw executemany   {raw:10,.0f} records/s")
    print(f"  ratio             {ours / raw:10.2f}  (target >= 0.30; >= 20,000/s on SQLite)")


if __name__ == "__main__":
    main()
