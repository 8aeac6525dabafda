"""A run's progress kept as its task records are written, so reading it costs a handful of
rows whatever the size of the run (``models.TaskLoad``: one row per process and one for
the whole run).

Every write of task records (the trace's progress calls, a run's end aborting its
unfinished tasks) changes the rows in the same transaction, by the difference between
each task's contribution before and after the write; both writers hold the run's row
while they do, so two writes of one run never interleave. A run whose rows are missing
(tasks written before they were kept) is recounted from its task records once
(``reconcile``), which also finds its real peaks: the most tasks, CPUs and memory that
ran at one time, from the tasks' start and end times.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from wes_gateway.domain import run_stats
from wes_gateway.domain.models import Run, Task, TaskLoad
from wes_gateway.domain.states import FINAL_TASK_STATUSES, TaskStatus

WHOLE_RUN = ""  # the process key of the whole run's row (no process is named so)
UNNAMED = "unknown"  # where a task reported without a process is counted

STATUS_COUNTER = {
    TaskStatus.NEW.value: "pending",
    TaskStatus.SUBMITTED.value: "submitted",
    TaskStatus.RUNNING.value: "running",
    TaskStatus.COMPLETED.value: "succeeded",
    TaskStatus.FAILED.value: "failed",
    TaskStatus.CACHED.value: "cached",
    TaskStatus.ABORTED.value: "aborted",
}
_FINISHED = frozenset(status.value for status in FINAL_TASK_STATUSES)
_RUNNING = TaskStatus.RUNNING.value
# The CPU time of finished tasks by status, and the failed ones Nextflow ignored or
# retried: with the status counters, what the workflow stats are made of (run_stats.COUNTS).
_MILLIS_OF = {
    TaskStatus.COMPLETED.value: "succeed_millis",
    TaskStatus.CACHED.value: "cached_millis",
    TaskStatus.FAILED.value: "failed_millis",
}
_ACTION_COUNTER = {"IGNORE": "ignored", "RETRY": "retries"}
_STATS_ONLY = (*_MILLIS_OF.values(), *_ACTION_COUNTER.values())
# The columns that are sums of the tasks' contributions (peaks are not: they only grow).
SUMMED = (
    "tasks",
    *STATUS_COUNTER.values(),
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
    *_STATS_ONLY,
)
PEAKS = (("peak_tasks", "running"), ("peak_cpus", "load_cpus"), ("peak_memory", "load_memory"))
# One task's values are held to this, so that a run's sums stay within 64 bits.
_LARGEST = 2**45

# A task as the rows count it: (process, status, record).
TaskState = tuple[str | None, str | None, Mapping[str, Any]]


def _amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if not math.isfinite(value):
        return 0
    return min(max(value, 0), _LARGEST)


def _whole(value: float) -> int:
    return min(round(value), _LARGEST)


def _count(value: Any) -> int:
    """``_whole(_amount(value))`` in one step: a task field as a bounded whole number
    (this runs for every field of every task record written)."""
    kind = type(value)
    if kind is int:
        return value if 0 <= value <= _LARGEST else (0 if value < 0 else _LARGEST)
    if kind is float and math.isfinite(value):
        return min(round(max(value, 0)), _LARGEST)
    return 0 if kind is bool or not isinstance(value, int | float) else _whole(_amount(value))


def process_key(process: str | None) -> str:
    return process or UNNAMED


def record_of(data: Any) -> Mapping[str, Any]:
    """A stored task record, whether the driver gave it decoded or as JSON text."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return {}
    return data if isinstance(data, dict) else {}


def contribution(status: str | None, record: Mapping[str, Any]) -> dict[str, int]:
    """What one task adds to the rows of its process and of its run."""
    values = {"tasks": 1}
    counter = STATUS_COUNTER.get(status or "")
    if counter:
        values[counter] = 1
    if status == _RUNNING:
        values["load_cpus"] = _count(record.get("cpus"))
        values["load_memory"] = _count(record.get("memory"))
    elif status in _FINISHED:
        get = record.get
        cpus = _amount(get("cpus"))
        realtime = _amount(get("realtime"))
        values["cpus"] = _whole(cpus)
        values["cpu_time"] = _whole(realtime * cpus)
        values["cpu_load_milli"] = _whole(realtime * _amount(get("pcpu")) * 10)
        values["memory_rss"] = _count(get("peakRss"))
        values["memory_req"] = _count(get("memory"))
        values["read_bytes"] = _count(get("rchar"))
        values["write_bytes"] = _count(get("wchar"))
        values["vol_ctx_switch"] = _count(get("volCtxt"))
        values["inv_ctx_switch"] = _count(get("invCtxt"))
        if status in _MILLIS_OF:
            values[_MILLIS_OF[status]] = _whole(run_stats.cpu_millis(record))
        if status == TaskStatus.FAILED.value:
            action = _ACTION_COUNTER.get(run_stats.error_action(record))
            if action:
                values[action] = 1
    return values


def stats_counts(loads: Iterable[TaskLoad]) -> dict[str, int]:
    """The whole run's counts the workflow stats are made of (``run_stats.COUNTS``),
    zeros for a run without task records."""
    whole = next((row for row in loads if row.process == WHOLE_RUN), None)
    return {key: int(getattr(whole, key) or 0) if whole else 0 for key in run_stats.COUNTS}


def _executor(record: Mapping[str, Any]) -> str | None:
    executor = record.get("executor")
    return executor[:64] if isinstance(executor, str) else None


def kept_executors(session: Session, run_id: str) -> list[str] | None:
    """The executors the run's kept rows name (empty when none), or None when its rows
    are not kept (no task record written since they were)."""
    row = (
        session.connection()
        .execute(
            select(TaskLoad.executors).where(
                TaskLoad.run_id == run_id, TaskLoad.process == WHOLE_RUN
            )
        )
        .first()
    )
    return None if row is None else list(row.executors or ())  # decoded by the column's type


def tracked(session: Session, run_id: str) -> bool:
    """Whether the run's rows are kept (written since its first task record)."""
    return kept_executors(session, run_id) is not None


def current(session: Session, run_id: str, task_ids: Iterable[int]) -> dict[int, TaskState]:
    """The stored state of these tasks of the run (those that exist)."""
    ids = list(task_ids)
    if not ids:
        return {}
    rows = session.connection().execute(
        select(Task.task_id, Task.process, Task.status, Task.data).where(
            Task.run_id == run_id, Task.task_id.in_(ids)
        )
    )
    return {row.task_id: (row.process, row.status, record_of(row.data)) for row in rows}


@cache
def _delta_sql(paramstyle: str) -> str:
    """Add one row's deltas to a run's kept row, made if missing, for the driver itself
    (one statement for every row a write changes, nothing read first): each sum grows by
    its delta and each peak rises to its load if the load passed it. In an upsert's SET
    the table's columns are the row's values before the change, on both databases."""
    mark = "?" if paramstyle == "qmark" else "%s"
    table = TaskLoad.__tablename__
    peaks = [peak for peak, _ in PEAKS]
    columns = ("run_id", "process", *SUMMED, *peaks)
    sums = [f"{column} = {table}.{column} + excluded.{column}" for column in SUMMED]
    rises = [
        f"{peak} = CASE WHEN {table}.{load} + excluded.{load} > {table}.{peak} "
        f"THEN {table}.{load} + excluded.{load} ELSE {table}.{peak} END"
        for peak, load in PEAKS
    ]
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join(mark for _ in columns)}) "
        f"ON CONFLICT (run_id, process) DO UPDATE SET {', '.join(sums + rises)}"
    )


def record(
    session: Session,
    run_id: str,
    before: Mapping[int, TaskState],
    after: Mapping[int, TaskState],
    executors_kept: Iterable[str] | None = None,
) -> None:
    """Change the run's rows by what these tasks changed: ``before`` as they were stored
    (absent: new), ``after`` as they are now. ``executors_kept``: what ``kept_executors``
    said (read here when not given). The caller holds the run's row."""
    deltas: dict[str, dict[str, int]] = {}
    executors: set[str] = set()

    def add(key: str, values: Mapping[str, int], sign: int) -> None:
        delta = deltas.get(key)
        if delta is None:
            delta = deltas[key] = {}
        for column, value in values.items():
            delta[column] = delta.get(column, 0) + sign * value

    for task_id, (process, status, data) in after.items():
        old = before.get(task_id)
        if old is not None:
            if old[1] == status and old[0] == process and old[2] == data:
                continue
            add(process_key(old[0]), contribution(old[1], old[2]), -1)
        add(process_key(process), contribution(status, data), 1)
        executor = _executor(data)
        if executor:
            executors.add(executor)
    if not deltas:
        return
    # The whole run changes by what its processes changed.
    whole: dict[str, int] = {}
    for delta in deltas.values():
        for column, value in delta.items():
            whole[column] = whole.get(column, 0) + value
    deltas[WHOLE_RUN] = whole
    rows = [
        (
            run_id,
            key,
            *(delta.get(column, 0) for column in SUMMED),
            *(max(delta.get(load, 0), 0) for _, load in PEAKS),
        )
        for key, delta in deltas.items()
    ]
    connection = session.connection()
    connection.exec_driver_sql(_delta_sql(connection.dialect.paramstyle), rows)
    if executors:
        known = set(
            kept_executors(session, run_id) or () if executors_kept is None else executors_kept
        )
        if executors - known:
            connection.execute(
                update(TaskLoad)
                .where(TaskLoad.run_id == run_id, TaskLoad.process == WHOLE_RUN)
                .values(executors=sorted(known | executors))
            )
    # Rows this session loaded earlier are stale now.
    for loaded in list(session.identity_map.values()):
        if isinstance(loaded, TaskLoad) and loaded.run_id == run_id:
            session.expire(loaded)


def _peaks(intervals: list[tuple[datetime, datetime | None, int, int]]) -> tuple[int, int, int]:
    """The most tasks, CPUs and memory running at one time, from (start, end, cpus,
    memory) of the tasks that started; a task's end comes before another's start at the
    same instant."""
    events: list[tuple[datetime, int, int, int]] = []
    for start, end, cpus, memory in intervals:
        events.append((start, 1, cpus, memory))
        if end is not None:
            events.append((max(end, start), 0, cpus, memory))
    events.sort(key=lambda event: (event[0], event[1]))
    tasks = cpus_now = memory_now = 0
    peak = [0, 0, 0]
    for _, starts, cpus, memory in events:
        sign = 1 if starts else -1
        tasks += sign
        cpus_now += sign * cpus
        memory_now += sign * memory
        peak = [max(peak[0], tasks), max(peak[1], cpus_now), max(peak[2], memory_now)]
    return peak[0], peak[1], peak[2]


def recount(session: Session, run_id: str) -> dict[str, dict[str, Any]]:
    """The rows the run's task records add up to, by process key, peaks included."""
    sums: dict[str, dict[str, Any]] = {}
    intervals: dict[str, list[tuple[datetime, datetime | None, int, int]]] = {}
    executors: set[str] = set()
    query = select(Task.process, Task.status, Task.start, Task.complete, Task.data).where(
        Task.run_id == run_id
    )
    for row in session.execute(query):
        data = record_of(row.data)
        values = contribution(row.status, data)
        key = process_key(row.process)
        span = None
        if row.start is not None:
            cpus = _whole(_amount(data.get("cpus")))
            memory = _whole(_amount(data.get("memory")))
            span = (row.start, row.complete, cpus, memory)
        for group in (key, WHOLE_RUN):
            total = sums.setdefault(group, dict.fromkeys(SUMMED, 0))
            for column, value in values.items():
                total[column] += value
            if span is not None:
                intervals.setdefault(group, []).append(span)
        executor = _executor(data)
        if executor:
            executors.add(executor)
    for group, total in sums.items():
        peaks = _peaks(intervals.get(group, []))
        for (peak, load), seen in zip(PEAKS, peaks, strict=True):
            total[peak] = max(seen, total[load])
    if WHOLE_RUN in sums:
        sums[WHOLE_RUN]["executors"] = sorted(executors)
    return sums


def reconcile(session: Session, run_id: str) -> None:
    """Recount the run's rows from its task records (none while it has no task). The
    caller holds the run's row; does not commit."""
    session.execute(
        delete(TaskLoad)
        .where(TaskLoad.run_id == run_id)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    for key, values in recount(session, run_id).items():
        session.add(TaskLoad(run_id=run_id, process=key, **values))
    session.flush()


def read(session: Session, run_id: str) -> list[TaskLoad]:
    """The run's rows, recounted first (and kept) when its tasks were written before they
    were kept. Empty for a run without task records."""
    rows = list(session.execute(select(TaskLoad).where(TaskLoad.run_id == run_id)).scalars())
    if rows or not session.execute(select(exists().where(Task.run_id == run_id))).scalar():
        return rows
    session.execute(select(Run.id).where(Run.id == run_id).with_for_update())
    if not tracked(session, run_id):  # another request may have recounted meanwhile
        reconcile(session, run_id)
    session.commit()
    return list(session.execute(select(TaskLoad).where(TaskLoad.run_id == run_id)).scalars())
