"""What `nextflow run -with-tower` reports, applied to the run model.

Nextflow calls create, begin, progress (and heartbeat) and complete; each call may be
retried, arrive late or out of order, carry explicit nulls and fields we do not know.
So every call here is idempotent, reads leniently, and changes states only through the
state machine (a finished run is never revived). A call about a finished run is answered
as usual (Nextflow retries ``complete``, and late calls must not fail a pipeline) but
changes nothing: its tasks, names and metrics stay as they were when it ended (the end
itself marks the tasks it left unfinished ABORTED, and a late progress call cannot move
one back to a live status; Nextflow sends its last task records before ``complete``).

How a run's end is decided, when both the trace and the compute backend report it: the
first report of an end wins, by compare-and-set, and the later one only adds detail (exit
code, stats). Both map the same way: success (exit 0) is COMPLETE, a failure is
EXECUTOR_ERROR; a run being cancelled (CANCELING) ends CANCELED whatever it reports
(``states.end_state``); a head job that vanished without a word is the backend's
SYSTEM_ERROR. Since Nextflow sends `complete` before it exits, the trace usually decides,
and the backend's poll then adds the exit code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from wes_gateway.domain import run_changes, task_loads
from wes_gateway.domain.errors import BadRequest, Forbidden
from wes_gateway.domain.ids import new_run_id
from wes_gateway.domain.launch import WORKFLOW_TYPE, WORKFLOW_TYPE_VERSIONS
from wes_gateway.domain.models import Run, RunStateChange, Task
from wes_gateway.domain.runs import get_run, visible
from wes_gateway.domain.states import TERMINAL, State, end_state, is_terminal
from wes_gateway.domain.tokens import Principal
from wes_gateway.domain.transitions import transition
from wes_gateway.infra.db import UTCDateTime

NO_EXIT_CODE = 2147483647  # Nextflow's "the task has no exit code yet"
MAX_TASKS_PER_CALL = 100

# Run columns filled from the trace's workflow record: column, field, longest value kept.
WORKFLOW_FIELDS: tuple[tuple[str, str, int | None], ...] = (
    ("run_name", "runName", 80),
    ("session_id", "sessionId", 36),
    ("project_name", "projectName", 255),
    ("repository", "repository", None),
    ("commit_id", "commitId", 64),
    ("revision", "revision", 100),
    ("profile", "profile", 255),
    ("command_line", "commandLine", None),
    ("config_text", "configText", None),
    ("work_dir", "workDir", None),
    ("launch_dir", "launchDir", None),
    ("error_message", "errorMessage", None),
    ("error_report", "errorReport", None),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any, limit: int | None) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:limit] if limit else text


def _exit_code(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value == NO_EXIT_CODE:
        return None
    return value if -(2**31) <= value < 2**31 else None


def parse_time(value: Any) -> datetime | None:
    """Nextflow sends ISO 8601 times (older clients: epoch milliseconds)."""
    if value is None:
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value / 1000, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _traced_run(session: Session, principal: Principal, run_id: str, *only: Any) -> Run:
    run = get_run(session, principal, run_id, *only)
    if not is_terminal(run.state):
        run.last_seen_at = _now()
    return run


def create(session: Session, principal: Principal, body: Mapping[str, Any]) -> Run:
    """A launched run names its id; a run started elsewhere becomes a monitoring-only
    run of the caller."""
    workflow_id = body.get("workflowId") or body.get("launchId")
    if workflow_id:
        run = session.execute(
            visible(select(Run).where(Run.id == str(workflow_id)), principal)
        ).scalar_one_or_none()
        if run is None:
            raise BadRequest(f"Unknown workflow launch id={workflow_id}")
    else:
        if principal.run_id is not None:
            raise Forbidden("a run's own token can only report that run")
        project = _text(body.get("projectName"), None) or "unnamed"
        run = Run(
            id=new_run_id(),
            owner_id=principal.user_id,
            workspace_id=principal.workspace_id,
            state=State.INITIALIZING,
            source="trace",
            request={
                "workflow_type": WORKFLOW_TYPE,
                "workflow_type_version": WORKFLOW_TYPE_VERSIONS[0],
                "workflow_url": project,
                "workflow_params": {},
                "tags": {},
                "workflow_engine_parameters": {},
            },
            tags={},
            outputs={},
            pipeline=project,
            user_name=principal.user_name,
        )
        session.add(run)
        session.flush()
        run_changes.note(session, run.id, run_changes.ADDED)
        session.add(
            RunStateChange(
                run_id=run.id,
                from_state=None,
                to_state=State.INITIALIZING,
                at=run.created_at,
                reason="reported by nextflow -with-tower",
            )
        )
    if not is_terminal(run.state):
        for column, field, limit in WORKFLOW_FIELDS[:5]:
            value = _text(body.get(field), limit)
            if value is not None:
                setattr(run, column, value)
        run.last_seen_at = _now()
        run_changes.note(session, run.id, run_changes.STATUS)
    session.commit()
    return run


def _store_workflow(run: Run, workflow: Mapping[str, Any]) -> None:
    if not workflow:
        return
    run.workflow = dict(workflow)
    for column, field, limit in WORKFLOW_FIELDS:
        value = _text(workflow.get(field), limit)
        if value is not None:
            setattr(run, column, value)
    if isinstance(workflow.get("params"), dict):
        run.params = workflow["params"]
    if isinstance(workflow.get("stats"), dict):
        run.stats = workflow["stats"]
    exit_code = _exit_code(workflow.get("exitStatus"))
    if exit_code is not None:
        run.exit_status = exit_code


def begin(session: Session, principal: Principal, run_id: str, body: Mapping[str, Any]) -> Run:
    run = _traced_run(session, principal, run_id)
    if not is_terminal(run.state):
        _store_workflow(run, _object(body.get("workflow")))
        run_changes.note(session, run.id, run_changes.STATUS)
        transition(session, run.id, State.RUNNING, "nextflow began the run")
    session.commit()
    return run


# What heartbeat reads of a run (it comes every few seconds; a run's other columns, its
# request and metrics among them, need not be loaded for it).
_PROGRESS_COLUMNS = (Run.id, Run.state, Run.last_seen_at)


def progress(session: Session, principal: Principal, run_id: str, body: Mapping[str, Any]) -> str:
    """Store the task records and counters of a progress call; returns the run's id."""
    tasks = body.get("tasks") or []
    if not isinstance(tasks, list):
        raise BadRequest("tasks: must be a list of task records")
    if len(tasks) > MAX_TASKS_PER_CALL:
        raise BadRequest(f"Workflow trace request too big: more than {MAX_TASKS_PER_CALL} tasks")
    counters = body.get("progress")
    counters = counters if isinstance(counters, dict) else None
    state = _hold_live(session, principal, run_id, counters)
    if state is None:  # ended (its tasks are final too), or not the caller's: a 404 then
        get_run(session, principal, run_id, Run.id)
        session.commit()
        return run_id
    upsert_tasks(session, run_id, tasks)
    kinds = ([run_changes.STATUS] if counters is not None or tasks else []) + (
        [run_changes.TASKS] if tasks else []
    )
    if kinds:  # the run's kept progress moves with its task records
        run_changes.note(session, run_id, *kinds)
    if state is State.UNKNOWN:
        transition(session, run_id, State.RUNNING, "nextflow reported again")
    session.commit()
    return run_id


def _hold_live(
    session: Session, principal: Principal, run_id: str, counters: dict | None
) -> State | None:
    """Mark a run the principal may report on seen (with Nextflow's counters, when sent)
    if it has not ended, holding its row until the commit; returns its state, or None
    when it has ended or is not the principal's.

    The run's end (``transitions.transition``) updates the same row first and then ends its
    unfinished tasks, so the two serialise: task records written under this hold are in
    before the end reads them (and are ended with the rest), and records that come after
    the end are refused here. A check of the state read earlier would let a progress call
    racing the end write RUNNING over an ABORTED task."""
    values: dict[str, Any] = {"last_seen_at": _now()}
    if counters is not None:
        values["progress"] = counters
    held = visible(update(Run), principal).where(Run.id == run_id, Run.state.not_in(TERMINAL))
    state = session.execute(
        held.values(**values).returning(Run.state).execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return state


def heartbeat(session: Session, principal: Principal, run_id: str, body: Mapping[str, Any]) -> Run:
    run = _traced_run(session, principal, run_id, *_PROGRESS_COLUMNS)
    _alive(session, run, body)
    session.commit()
    return run


def _alive(session: Session, run: Run, body: Mapping[str, Any]) -> None:
    if is_terminal(run.state):
        return
    if isinstance(body.get("progress"), dict):
        run.progress = body["progress"]
        run_changes.note(session, run.id, run_changes.STATUS)
    if run.state is State.UNKNOWN:
        transition(session, run.id, State.RUNNING, "nextflow reported again")


def complete(session: Session, principal: Principal, run_id: str, body: Mapping[str, Any]) -> Run:
    """The run ended: its final metadata, stats and metrics, and its end state by the
    rule in this module's docstring."""
    run = _traced_run(session, principal, run_id)
    if is_terminal(run.state):
        session.commit()
        return run
    workflow = _object(body.get("workflow"))
    _store_workflow(run, workflow)
    run_changes.note(session, run.id, run_changes.STATUS)
    if isinstance(body.get("metrics"), list):
        run.metrics = body["metrics"]
    if isinstance(body.get("progress"), dict):
        run.progress = body["progress"]
    success = workflow.get("success") is True
    end = end_state(run.state, State.COMPLETE if success else State.EXECUTOR_ERROR)
    reason = {
        State.CANCELED: "cancelled; nextflow stopped",
        State.COMPLETE: "nextflow completed the run",
    }.get(end, "nextflow reported a failure")
    transition(session, run.id, end, reason, at=parse_time(workflow.get("complete")) or None)
    session.commit()
    return run


_TASK_COLUMNS = (
    "name",
    "process",
    "status",
    "hash",
    "native_id",
    "workdir",
    "exit_status",
    "submit",
    "start",
    "complete",
    "data",
    "updated_at",
)


_ROW_COLUMNS = ("run_id", "task_id", *_TASK_COLUMNS)
# A record as its ``data`` column stores it: compact, and without the check for cycles (a
# record decoded from a request body has none).
_RECORD_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def _task_row(run_id: str, record: Mapping[str, Any], now: Any, dialect: str) -> tuple | None:
    """The bound values of one task record, as the driver takes them (_ROW_COLUMNS)."""
    task_id = record.get("taskId")
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        return None
    return (
        run_id,
        task_id,
        _text(record.get("name"), None),
        _text(record.get("process"), 255),
        _text(record.get("status"), 16),
        _text(record.get("hash"), 32),
        _text(record.get("nativeId"), 255),
        _text(record.get("workdir"), None),
        _exit_code(record.get("exit")),
        UTCDateTime.driver_value(parse_time(record.get("submit")), dialect),
        UTCDateTime.driver_value(parse_time(record.get("start")), dialect),
        UTCDateTime.driver_value(parse_time(record.get("complete")), dialect),
        _RECORD_JSON.encode(record),
        now,
    )


@cache
def _upsert_sql(dialect: str, paramstyle: str) -> str:
    """Insert or update by (run, taskId), for the driver itself: Nextflow sends 100
    records a call, and SQLAlchemy's per-value processing cost more than the write."""
    mark = "?" if paramstyle == "qmark" else "%s"
    data = f"CAST({mark} AS JSONB)" if dialect == "postgresql" else mark
    values = ", ".join(data if column == "data" else mark for column in _ROW_COLUMNS)
    updates = ", ".join(f"{column} = excluded.{column}" for column in _TASK_COLUMNS)
    return (
        f"INSERT INTO {Task.__tablename__} ({', '.join(_ROW_COLUMNS)}) VALUES ({values}) "
        f"ON CONFLICT (run_id, task_id) DO UPDATE SET {updates}"
    )


def upsert_tasks(session: Session, run_id: str, records: list[Any]) -> int:
    """Insert or update task records by (run, taskId) in one statement, and the run's
    kept progress with them (``task_loads``). The caller holds the run's row."""
    dialect = session.get_bind().dialect
    now = UTCDateTime.driver_value(_now(), dialect.name)
    rows: dict[int, tuple] = {}
    latest: dict[int, task_loads.TaskState] = {}
    for record in records:
        row = _task_row(run_id, record, now, dialect.name) if isinstance(record, dict) else None
        if row is not None:
            rows[row[1]] = row  # a batch keeps each task's latest record
            latest[row[1]] = (row[3], row[4], record)
    if rows:
        executors = task_loads.kept_executors(session, run_id)
        before = task_loads.current(session, run_id, rows) if executors is not None else {}
        sql = _upsert_sql(dialect.name, dialect.paramstyle)
        session.connection().exec_driver_sql(sql, list(rows.values()))
        if executors is not None:
            task_loads.record(session, run_id, before, latest, executors)
        else:  # the first records of the run, or tasks written before progress was kept
            task_loads.reconcile(session, run_id)
    return len(rows)
