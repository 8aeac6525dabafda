"""The Tower view of runs: offset listing with Tower's search syntax, tasks with sorting,
the task records progress is aggregated from, and cancel with Tower's rule. Access is the
run service's: a user's own runs, an admin's all."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from wes_gateway.auth import Principal
from wes_gateway.errors import BadRequest, InvalidField, NotFound
from wes_gateway.models import Run, Task, User
from wes_gateway.runs import cancel_run, delete_run, get_run, visible
from wes_gateway.runs import get_task as get_run_task
from wes_gateway.states import (
    STATES_OF_TOWER_STATUS,
    TOWER_STATUS,
    TaskStatus,
    TowerStatus,
    is_terminal,
)

DEFAULT_MAX = 50
MAX_MAX = 1000
_FILTER = re.compile(r"(\w+):(\"[^\"]*\"|\S+)")


@dataclass(frozen=True)
class WorkflowPage:
    runs: list[Run]
    has_more: bool
    total: int | None


INT32_MAX = 2**31 - 1


def _page_bounds(max_: int | None, offset: int | None) -> tuple[int, int]:
    """Tower's int32 paging parameters; a page holds at most MAX_MAX items."""
    if offset is not None and not 0 <= offset <= INT32_MAX:
        raise InvalidField("offset", f"must be between 0 and {INT32_MAX}")
    if max_ is not None and not 1 <= max_ <= INT32_MAX:
        raise InvalidField("max", f"must be between 1 and {INT32_MAX}")
    return min(max_ or DEFAULT_MAX, MAX_MAX), offset or 0


def _date(field: str, value: str) -> datetime:
    for pattern in ("%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise InvalidField("search", f"{field}: expects a date such as 2026-11-23")


def _apply_search(query: Select, search: str) -> Select:
    """Free text (a case-insensitive match on project, run name and session id, with *
    as a wildcard) and keyword:value filters, all of which must hold."""
    for key, raw in _FILTER.findall(search):
        value = raw.strip('"')
        key = key.lower()
        if key == "status":
            try:
                states = STATES_OF_TOWER_STATUS[TowerStatus(value.upper())]
            except ValueError:
                raise InvalidField("search", f"status: unknown status {value!r}") from None
            query = query.where(Run.state.in_(states))
        elif key in ("projectname", "runname", "sessionid", "workflowid", "username"):
            column = {
                "projectname": Run.project_name,
                "runname": Run.run_name,
                "sessionid": Run.session_id,
                "workflowid": Run.id,
                "username": User.name,
            }[key]
            query = query.where(column == value)
        elif key == "after":
            query = query.where(Run.created_at >= _date(key, value))
        elif key == "before":
            query = query.where(Run.created_at < _date(key, value))
        else:
            raise InvalidField("search", f"unknown filter {key}:")
    text = _FILTER.sub(" ", search).strip()
    if text:
        pattern = "%" + text.replace("%", r"\%").replace("_", r"\_").replace("*", "%") + "%"
        query = query.where(
            or_(
                func.lower(Run.project_name).like(pattern.lower(), escape="\\"),
                func.lower(Run.pipeline).like(pattern.lower(), escape="\\"),
                func.lower(Run.run_name).like(pattern.lower(), escape="\\"),
                func.lower(Run.session_id).like(pattern.lower(), escape="\\"),
            )
        )
    return query


def list_workflows(
    session: Session,
    principal: Principal,
    *,
    max_: int | None,
    offset: int | None,
    search: str | None,
    include_total: bool,
) -> WorkflowPage:
    size, start = _page_bounds(max_, offset)
    query = visible(select(Run).join(User, User.id == Run.owner_id), principal)
    if search:
        query = _apply_search(query, search)
    total = None
    if include_total:
        total = session.execute(
            select(func.count()).select_from(query.with_only_columns(Run.id).subquery())
        ).scalar_one()
    rows = list(
        session.execute(
            query.order_by(Run.created_at.desc(), Run.id.desc()).limit(size + 1).offset(start)
        ).scalars()
    )
    return WorkflowPage(runs=rows[:size], has_more=len(rows) > size, total=total)


_SORTABLE = {
    "taskId": Task.task_id,
    "name": Task.name,
    "process": Task.process,
    "status": Task.status,
    "submit": Task.submit,
    "start": Task.start,
    "complete": Task.complete,
    "exitStatus": Task.exit_status,
}


TASK_STATUSES = tuple(status.value for status in TaskStatus)
# Only these two: task names themselves hold colons (NFCORE_DEMO:FASTQC (1)).
_TASK_FILTER = re.compile(r"(?<![\w:])(process|status):(\"[^\"]*\"|\S+)", re.IGNORECASE)


def _prefix(text: str):
    return text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"


def _apply_task_search(query: Select, search: str) -> Select:
    """A name prefix, and ``process:`` (exact, or a prefix ending in *) and ``status:``
    (comma-separated) filters."""
    for key, raw in _TASK_FILTER.findall(search):
        value = raw.strip('"')
        if key.lower() == "process":
            if value.endswith("*"):
                query = query.where(Task.process.like(_prefix(value[:-1]), escape="\\"))
            else:
                query = query.where(Task.process == value)
        else:
            wanted = [part.strip().upper() for part in value.split(",") if part.strip()]
            unknown = sorted(set(wanted) - set(TASK_STATUSES))
            if unknown:
                raise InvalidField("search", f"status: unknown task status {unknown[0]!r}")
            query = query.where(Task.status.in_(wanted))
    text = _TASK_FILTER.sub(" ", search).strip()
    if text:
        query = query.where(Task.name.like(_prefix(text), escape="\\"))
    return query


def list_tasks(
    session: Session,
    principal: Principal,
    run_id: str,
    *,
    max_: int | None,
    offset: int | None,
    sort_by: str | None,
    sort_dir: str | None,
    search: str | None,
) -> tuple[list[Task], int]:
    get_run(session, principal, run_id)
    size, start = _page_bounds(max_, offset)
    query = select(Task).where(Task.run_id == run_id)
    if search:
        query = _apply_task_search(query, search)
    total = session.execute(
        select(func.count()).select_from(query.with_only_columns(Task.id).subquery())
    ).scalar_one()
    column = _SORTABLE[sort_by or "taskId"]
    order = column.desc() if sort_dir == "desc" else column.asc()
    tasks = (
        session.execute(query.order_by(order, Task.task_id).limit(size).offset(start))
        .scalars()
        .all()
    )
    return list(tasks), total


def get_task(session: Session, principal: Principal, run_id: str, task_id: int) -> Task:
    return get_run_task(session, principal, run_id, str(task_id))


def tasks_for_progress(session: Session, run_id: str) -> list[tuple[str | None, str | None, dict]]:
    return [
        (row.process, row.status, row.data or {})
        for row in session.execute(
            select(Task.process, Task.status, Task.data).where(Task.run_id == run_id)
        )
    ]


def cancel(session: Session, principal: Principal, run_id: str) -> Run:
    """Tower's rule: cancelling a run that has already ended is a 400."""
    run = get_run(session, principal, run_id)
    if is_terminal(run.state):
        raise BadRequest(
            f"Invalid cancel request for workflow id: {run.id}; "
            f"status: {TOWER_STATUS[run.state].value}"
        )
    return cancel_run(session, principal, run_id)


def delete_many(
    session: Session, principal: Principal, run_ids: list[str], *, force: bool
) -> tuple[list[str], list[Run]]:
    """Delete each run as ``delete_run`` would. Returns the ids that could not be deleted
    (unknown to the caller, or active without ``force``) and the runs deleted, for the
    workers to remove (or to stop first)."""
    failed: list[str] = []
    deleted: list[Run] = []
    for run_id in dict.fromkeys(run_ids):
        try:
            deleted.append(delete_run(session, principal, run_id, force=force))
        except (BadRequest, NotFound):
            session.rollback()
            failed.append(run_id)
    return failed, deleted
