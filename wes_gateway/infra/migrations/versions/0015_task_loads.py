"""task_loads: a run's progress kept as its task records are written; indexes for the
tasks list's sorts and searches

Revision ID: 0015
Revises: 0007
Create Date: 2026-12-04 11:40:00

The rows of every run that has task records are counted from them here (with the peaks
their start and end times give), so a run's progress reads the same after the upgrade.
The counting is this revision's own copy of ``domain.task_loads.recount`` as it was
when written (a migration keeps working whatever the domain becomes).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from wes_gateway.infra.db import JSONType

revision = "0015"
down_revision = "0011"
branch_labels = None
depends_on = None

_SORTS = ("submit", "start", "complete", "exit_status")
_COUNTERS = {
    "NEW": "pending",
    "SUBMITTED": "submitted",
    "RUNNING": "running",
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "CACHED": "cached",
    "ABORTED": "aborted",
}
_FINISHED = ("COMPLETED", "FAILED", "CACHED", "ABORTED")
_SUMMED = (
    "tasks",
    *_COUNTERS.values(),
    "cpus",
    "cpu_time",
    "cpu_load_milli",
    "memory_rss",
    "memory_req",
    "read_bytes",
    "write_bytes",
    "vol_ctx_switch",
    "inv_ctx_switch",
    "load_cpus",
    "load_memory",
)
_PEAKS = (("peak_tasks", "running"), ("peak_cpus", "load_cpus"), ("peak_memory", "load_memory"))
_LARGEST = 2**45


def _amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return min(max(value, 0), _LARGEST)


def _whole(value: float) -> int:
    return min(round(value), _LARGEST)


def _contribution(status: str | None, record: dict) -> dict[str, int]:
    values = {"tasks": 1}
    if status in _COUNTERS:
        values[_COUNTERS[status]] = 1
    if status == "RUNNING":
        values["load_cpus"] = _whole(_amount(record.get("cpus")))
        values["load_memory"] = _whole(_amount(record.get("memory")))
    elif status in _FINISHED:
        cpus = _amount(record.get("cpus"))
        realtime = _amount(record.get("realtime"))
        values.update(
            cpus=_whole(cpus),
            cpu_time=_whole(realtime * cpus),
            cpu_load_milli=_whole(realtime * _amount(record.get("pcpu")) * 10),
            memory_rss=_whole(_amount(record.get("peakRss"))),
            memory_req=_whole(_amount(record.get("memory"))),
            read_bytes=_whole(_amount(record.get("rchar"))),
            write_bytes=_whole(_amount(record.get("wchar"))),
            vol_ctx_switch=_whole(_amount(record.get("volCtxt"))),
            inv_ctx_switch=_whole(_amount(record.get("invCtxt"))),
        )
    return values


def _peaks(spans: list[tuple[Any, Any, int, int]]) -> list[int]:
    events = []
    for start, end, cpus, memory in spans:
        events.append((start, 1, cpus, memory))
        if end is not None:
            events.append((max(end, start), 0, cpus, memory))
    events.sort(key=lambda event: (event[0], event[1]))
    now, peak = [0, 0, 0], [0, 0, 0]
    for _, starts, cpus, memory in events:
        sign = 1 if starts else -1
        now = [now[0] + sign, now[1] + sign * cpus, now[2] + sign * memory]
        peak = [max(a, b) for a, b in zip(peak, now, strict=True)]
    return peak


def _fill(connection: sa.Connection, loads: sa.Table, run_id: str) -> None:
    sums: dict[str, dict[str, Any]] = {}
    spans: dict[str, list] = {}
    executors: set[str] = set()
    rows = connection.execute(
        sa.text("SELECT process, status, start, complete, data FROM tasks WHERE run_id = :run"),
        {"run": run_id},
    )
    for process, status, start, complete, data in rows:
        record = json.loads(data) if isinstance(data, str) else data
        record = record if isinstance(record, dict) else {}
        start, complete = _moment(start), _moment(complete)
        values = _contribution(status, record)
        for group in (process or "unknown", ""):
            total = sums.setdefault(group, dict.fromkeys(_SUMMED, 0))
            for column, value in values.items():
                total[column] += value
            if start is not None:
                cpus = _whole(_amount(record.get("cpus")))
                memory = _whole(_amount(record.get("memory")))
                spans.setdefault(group, []).append((start, complete, cpus, memory))
        if isinstance(record.get("executor"), str):
            executors.add(record["executor"][:64])
    for group, total in sums.items():
        seen = _peaks(spans.get(group, []))
        for (peak, load), value in zip(_PEAKS, seen, strict=True):
            total[peak] = max(value, total[load])
        total["executors"] = sorted(executors) if group == "" else None
        connection.execute(loads.insert().values(run_id=run_id, process=group, **total))


def _moment(value: Any) -> datetime | None:
    """A stored time as a comparable UTC datetime (SQLite gives text)."""
    if value is None or isinstance(value, datetime):
        return value.replace(tzinfo=None) if isinstance(value, datetime) else None
    return datetime.fromisoformat(str(value)).replace(tzinfo=None)


def upgrade() -> None:
    loads = op.create_table(
        "task_loads",
        sa.Column(
            "run_id",
            sa.String(14),
            sa.ForeignKey("runs.id", name="fk_task_loads_run_id_runs", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("process", sa.String(255), nullable=False),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False)
            for name in (*_SUMMED, *(peak for peak, _ in _PEAKS))
        ),
        sa.Column("executors", JSONType),
        sa.PrimaryKeyConstraint("run_id", "process", name="pk_task_loads"),
    )
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_run_process")
        batch.drop_index("ix_tasks_run_status")
        batch.create_index("ix_tasks_run_process", ["run_id", "process", "task_id"])
        batch.create_index("ix_tasks_run_status", ["run_id", "status", "task_id"])
        batch.create_index(
            "ix_tasks_run_name",
            ["run_id", "name", "task_id"],
            postgresql_ops={"name": "text_pattern_ops"},
        )
        for column in _SORTS:
            batch.create_index(f"ix_tasks_run_{column}", ["run_id", column, "task_id"])
    connection = op.get_bind()
    run_ids = connection.execute(sa.text("SELECT DISTINCT run_id FROM tasks")).scalars().all()
    for run_id in run_ids:
        _fill(connection, loads, run_id)


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        for column in _SORTS:
            batch.drop_index(f"ix_tasks_run_{column}")
        batch.drop_index("ix_tasks_run_name")
        batch.drop_index("ix_tasks_run_status")
        batch.drop_index("ix_tasks_run_process")
        batch.create_index("ix_tasks_run_process", ["run_id", "process"])
        batch.create_index("ix_tasks_run_status", ["run_id", "status"])
    op.drop_table("task_loads")
