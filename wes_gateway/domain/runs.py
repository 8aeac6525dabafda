"""The run service: every operation on runs that the APIs offer, with the access rules.

Handlers call these functions and shape the results with view functions; there is no SQL
anywhere else on the API side. A caller sees the runs of the workspace it acts in
(``tenancy.acting``; in the personal workspace their own, an administrator's all), a run
elsewhere is reported as not found, and a run-scoped token sees its run.

The WES operations come first; then the Tower ones: offset listing with Tower's search
syntax, tasks with sorting, the task records progress is aggregated from, and cancel
with Tower's rule, under the same access rules.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar

from sqlalchemy import Select, delete, exists, false, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased, load_only

from wes_gateway.domain import (
    compute_envs,
    labels,
    pipeline_secrets,
    placement,
    run_changes,
    run_files,
    task_loads,
    tenancy,
    tokens,
    trs,
)
from wes_gateway.domain.errors import (
    BadRequest,
    Forbidden,
    InvalidField,
    NotFound,
    ServiceUnavailable,
)
from wes_gateway.domain.ids import INT32_MAX, INT64_MAX, new_run_id
from wes_gateway.domain.launch import (
    LABEL_IDS,
    WORKFLOW_TYPE_ALIASES,
    RunRequest,
    check_resolved,
)
from wes_gateway.domain.models import (
    ComputeEnv,
    Run,
    RunLabel,
    RunStateChange,
    RunTag,
    Task,
    TaskLoad,
    User,
)
from wes_gateway.domain.pagination import decode_page_token, encode_page_token
from wes_gateway.domain.states import (
    ACTIVE,
    STATES_OF_TOWER_STATUS,
    TERMINAL,
    TOWER_STATUS,
    State,
    TaskStatus,
    TowerStatus,
    is_terminal,
)
from wes_gateway.domain.tokens import Principal
from wes_gateway.domain.transitions import transition
from wes_gateway.infra.db import utcnow

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000
SUMMARY_COLUMNS = (Run.id, Run.state, Run.start_time, Run.end_time, Run.tags, Run.created_at)


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_page_token: str  # "" on the last page


def page_size_or_default(page_size: int | None) -> int:
    if page_size is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= INT64_MAX:
        raise InvalidField("page_size", "must be between 1 and 2^63-1 (at most 1000 are served)")
    return min(page_size, MAX_PAGE_SIZE)


def visible(query: Select, principal: Principal) -> Select:
    """Runs not deleted in the principal's workspace (``tenancy.runs_in_scope``); a
    run-scoped token's run only."""
    query = query.where(Run.deleted_at.is_(None))
    if principal.run_id is not None:
        return query.where(Run.id == principal.run_id)
    return tenancy.runs_in_scope(query, principal)


def get_run(session: Session, principal: Principal, run_id: str, *only: Any) -> Run:
    """The run, if ``principal`` may see it; ``only`` names the columns to load (the
    others load when read)."""
    query = visible(select(Run).where(Run.id == run_id), principal)
    if only:
        query = query.options(load_only(*only))
    run = session.execute(query).scalar_one_or_none()
    if run is None:
        raise NotFound(f"run {run_id!r} not found")
    return run


def _same(field: str) -> str:
    return field


def create_run(
    session: Session,
    principal: Principal,
    request: RunRequest,
    files: list[tuple[str, BinaryIO]],
    *,
    run_dir_of,
    source: str = "wes",
    run_name: str | None = None,
    compute_env_field: str = "workflow_engine_parameters.compute_env_id",
    field_name: Callable[[str], str] = _same,
    tower_url: str | None = None,
    local_scripts: bool = False,
    trs_resolver: trs.Resolver | None = None,
) -> Run:
    """Accept a run: check it will run where it goes, stage its attachments, then commit
    it QUEUED.

    ``files`` pairs each cleaned attachment name with its stream; ``run_dir_of`` maps a run
    id to its folder. ``field_name`` turns a WES field into the one the caller sent
    (``launch.configText`` for a Tower launch); ``tower_url`` is the trace endpoint its
    head job gets; ``local_scripts`` allows pre/post-run scripts on the local platform;
    ``trs_resolver`` resolves a TRS workflow_url (none: such a run is refused).
    The row is committed before this returns, so an accepted run is
    durable whatever happens next; the folder is removed again if the commit fails.
    """
    if principal.run_id is not None:
        raise BadRequest("a run-scoped token cannot submit runs")
    ref = trs.parse(request.workflow_url)
    if ref is not None:
        # A registry may take seconds to answer: no database connection is held meanwhile.
        session.commit()
    resolved = _resolve_trs(ref, request, trs_resolver, field_name) if ref is not None else None
    pipeline = resolved.git_url if resolved else request.workflow_url
    compute_env_id = compute_envs.for_new_run(
        session, request.option("compute_env_id"), compute_env_field, principal.workspace_id
    )
    env = session.get(ComputeEnv, compute_env_id) if compute_env_id else None
    platform = env.platform if env else compute_envs.LOCAL
    config = dict(env.config or {}) if env else {}
    request = placement.scripts(
        request, platform, config, local_allowed=local_scripts, field_name=field_name
    )
    pipeline_secrets.check_launch(
        session, principal, request.workflow_engine_parameters, platform, field_name
    )
    run_labels = labels.resolve(
        session,
        principal,
        request.label_ids or None,
        field_name(f"workflow_engine_parameters.{LABEL_IDS}"),
    )
    run_id = new_run_id()
    run_dir: Path = run_dir_of(run_id)
    plan = placement.plan(
        session,
        visible(select(Run), principal),
        request,
        run_name=run_name,
        compute_env_id=compute_env_id,
        platform=platform,
        config=config,
        own_work_dir=str(run_files.launch_dir(run_dir).resolve() / "work"),
        local_work_root=str(run_dir.parent.resolve()),
        launch_dir_of=lambda other: str(run_files.launch_dir(run_dir_of(other)).resolve()),
        field_name=field_name,
        pipeline=pipeline,
    )
    if platform != compute_envs.LOCAL:
        placement.check_head_job_fits(
            platform, config, run_id, request, plan, tower_url=tower_url, field_name=field_name
        )
    if files:
        run_files.stage(run_files.launch_dir(run_dir), files)
    run = Run(
        id=run_id,
        owner_id=principal.user_id,
        workspace_id=principal.workspace_id,
        state=State.QUEUED,
        source=source,
        run_name=run_name,
        request=request.as_echo(),
        tags=request.tags,
        outputs={},
        pipeline=pipeline,
        revision=resolved.revision if resolved else request.option("revision"),
        trs=resolved.record() if resolved else None,
        profile=request.option("profile"),
        params=request.workflow_params,
        config_text=request.option("config"),
        compute_env_id=compute_env_id,
        user_name=principal.user_name,
        launch_dir=str(run_files.launch_dir(run_dir).resolve()),
        session_id=plan.session_id,
        work_dir=plan.work_dir,
        cache_run_id=plan.cache_run_id,
    )
    try:
        session.add(run)
        session.flush()
        session.add_all(
            RunTag(run_id=run_id, key=k, value=v, created_at=run.created_at)
            for k, v in request.tags.items()
        )
        session.add_all(RunLabel(run_id=run_id, label_id=label.id) for label in run_labels)
        run_changes.note(session, run_id, run_changes.ADDED)
        session.add(
            RunStateChange(
                run_id=run_id,
                from_state=None,
                to_state=State.QUEUED,
                at=run.created_at,
                reason="accepted",
            )
        )
        session.commit()
    except BaseException:
        session.rollback()
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run


def _resolve_trs(
    ref: trs.TrsReference,
    request: RunRequest,
    resolver: trs.Resolver | None,
    field_name: Callable[[str], str],
) -> trs.Resolution:
    """What the TRS workflow_url ``ref`` names, checked as a client's pipeline and
    revision are. Errors name the field as the caller sent it."""
    try:
        if resolver is None:
            raise InvalidField(trs.FIELD, "TRS workflows are not taken here")
        resolved = resolver.resolve(ref, request.option("revision"))
        check_resolved(resolved)
    except InvalidField as exc:
        raise InvalidField(field_name(exc.field), exc.message.split(": ", 1)[-1]) from None
    except ServiceUnavailable as exc:
        problem = exc.message.split(": ", 1)[-1]
        raise ServiceUnavailable(f"{field_name(trs.FIELD)}: {problem}") from None
    return resolved


@dataclass(frozen=True)
class RunFilter:
    """The filters of ``GET /runs`` (extensions shaped after the WES proposals), checked:
    states, tag pairs (a key alone: the tag is present), the workflow type, a creation
    window and a prefix of the run id or name. Each is a condition an index serves."""

    states: tuple[State, ...] = ()
    tags: tuple[tuple[str, str | None], ...] = ()
    no_workflow_type: bool = False  # a workflow type no run here has
    created_after: datetime | None = None
    created_before: datetime | None = None
    search: str | None = None

    def key(self) -> str:
        """The filter as the page token binds it."""
        return json.dumps(
            [
                sorted(state.value for state in self.states),
                sorted([key, value or ""] for key, value in self.tags),
                self.no_workflow_type,
                self.created_after.isoformat() if self.created_after else None,
                self.created_before.isoformat() if self.created_before else None,
                self.search,
            ],
            separators=(",", ":"),
        )

    def apply(self, query: Select) -> Select:
        """Every filter but the tags (``by_tag``) and the states, which ``newest_first``
        applies one at a time."""
        if self.no_workflow_type:
            query = query.where(false())
        if self.created_after is not None:
            query = query.where(Run.created_at > self.created_after)
        if self.created_before is not None:
            query = query.where(Run.created_at < self.created_before)
        if self.search:
            # An exact, case-sensitive prefix on every database (SQLite's LIKE ignores case).
            length = len(self.search)
            query = query.where(
                or_(
                    func.substr(Run.id, 1, length) == self.search,
                    func.substr(Run.run_name, 1, length) == self.search,
                )
            )
        return query


def _tagged(key: str, value: str | None) -> Any:
    """The run carries tag ``key`` (with ``value``): one look-up in run_tags' primary key
    (run, key) per run read, so the list still walks its (scope, created_at, id) index."""
    tag = aliased(RunTag)  # its own: the list may join run_tags already (``by_tag``)
    condition = exists().where(tag.run_id == Run.id, tag.key == key)
    if value is not None:
        condition = condition.where(tag.value == value)
    return condition


def by_tag(query: Select, tags: Sequence[tuple[str, str | None]]) -> tuple[Select, tuple]:
    """``query`` narrowed to runs with ``tags``, and the (created_at, id) columns to page
    it by. With a tag value, the page is read from run_tags' (key, value, created_at,
    run_id) index, the tag's runs newest first (joined to their rows for the scope); the
    other tags are looked up per run."""
    driving = next(((key, value) for key, value in tags if value is not None), None)
    keys: tuple = (Run.created_at, Run.id)
    if driving is not None:
        query = query.join(RunTag, RunTag.run_id == Run.id).where(
            RunTag.key == driving[0], RunTag.value == driving[1]
        )
        keys = (RunTag.created_at, RunTag.run_id)
    for key, value in tags:
        if (key, value) != driving:
            query = query.where(_tagged(key, value))
    return query, keys


def after_key(query: Select, keys: tuple, created: datetime, run_id: str) -> Select:
    return query.where(tuple_(*keys) < tuple_(created, run_id))


def newest_first(
    session: Session,
    query: Select,
    states: Sequence[State],
    *,
    limit: int,
    offset: int = 0,
    keys: tuple = (Run.created_at, Run.id),
) -> list[Any]:
    """The rows of ``query`` (which selects ``Run.created_at`` and ``Run.id``) newest
    first by ``keys``, ``offset`` rows skipped, ``limit`` kept, in one of ``states``
    (any, if none).

    One state is a range of a (scope, state, created_at, id) index read from its newest
    end. Several are as many ranges, each read only as far as the page needs and merged
    here: one ORDER BY over ``state IN (...)`` reads every match to sort them."""
    order = (keys[0].desc(), keys[1].desc())
    if len(states) <= 1:
        if states:
            query = query.where(Run.state == states[0])
        return list(session.execute(query.order_by(*order).limit(limit).offset(offset)))
    ranges = [
        session.execute(query.where(Run.state == state).order_by(*order).limit(offset + limit))
        for state in states
    ]
    merged = heapq.merge(*ranges, key=lambda row: (row.created_at, row.id), reverse=True)
    return list(itertools.islice(merged, offset, offset + limit))


def run_filter(
    *,
    state: Sequence[str] | None = None,
    tag_key: Sequence[str] | None = None,
    tag_value: Sequence[str] | None = None,
    workflow_type: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    search: str | None = None,
) -> RunFilter:
    """The filters of a ``GET /runs`` as given in its query, each error a 400 naming it."""
    states: list[State] = []
    for value in state or ():
        try:
            states.append(State(value.upper()))
        except ValueError:
            raise InvalidField(
                "state", f"{value!r} is not a WES state; one of {[s.value for s in State]}"
            ) from None
    keys, values = list(tag_key or ()), list(tag_value or ())
    if values and len(values) != len(keys):
        raise InvalidField(
            "tag_value", f"give one per tag_key ({len(keys)} keys, {len(values)} values)"
        )
    if any(not key for key in keys):
        raise InvalidField("tag_key", "must not be empty")
    tags = tuple(zip(keys, values or [None] * len(keys), strict=True))
    no_type = False
    if workflow_type is not None:
        no_type = workflow_type.upper() not in WORKFLOW_TYPE_ALIASES
    after = _timestamp("created_after", created_after)
    before = _timestamp("created_before", created_before)
    if search is not None and not search.strip():
        raise InvalidField("search", "must not be empty")
    return RunFilter(
        states=tuple(dict.fromkeys(states)),
        tags=tags,
        no_workflow_type=no_type,
        created_after=after,
        created_before=before,
        search=search.strip() if search else None,
    )


def _timestamp(field: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidField(field, "must be an RFC 3339 time, e.g. 2026-12-04T10:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_runs(
    session: Session,
    principal: Principal,
    *,
    page_size: int | None,
    page_token: str | None,
    signing_key: bytes,
    filters: RunFilter | None = None,
) -> Page[Any]:
    """Newest first, keyset-paged on (created_at, id): runs accepted while a client pages
    through sort before its cursor, so they never shift, repeat or hide older runs. The
    page token belongs to the filters it was served with."""
    size = page_size_or_default(page_size)
    filters = filters or RunFilter()
    scope = f"runs:{principal.token_id if principal.run_id else principal.user_id}"
    if principal.workspace_id is not None:
        scope += f":{principal.workspace_id}"
    if filters != RunFilter():
        digest = hashlib.sha256(filters.key().encode()).hexdigest()[:16]
        scope += f":filter:{digest}"
    query = filters.apply(visible(select(*SUMMARY_COLUMNS), principal))
    query, keys = by_tag(query, filters.tags)
    if page_token:
        created, run_id = decode_page_token(signing_key, scope, page_token)
        query = after_key(query, keys, _as_datetime(created), run_id)
    rows = newest_first(session, query, filters.states, limit=size + 1, keys=keys)
    next_token = ""
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        next_token = encode_page_token(signing_key, scope, [last.created_at.isoformat(), last.id])
    return Page(items=rows, next_page_token=next_token)


def _as_datetime(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidField("page_token", "not a page token issued by this service") from None


def cancel_run(session: Session, principal: Principal, run_id: str) -> Run:
    """Ask a run to stop. A QUEUED run is cancelled at once (nothing runs yet); a run a
    worker holds goes to CANCELING for the worker to stop. Cancelling a finished or
    already-cancelling run changes nothing."""
    if principal.run_id is not None:
        raise BadRequest("a run-scoped token cannot cancel runs")
    run = get_run(session, principal, run_id)
    if run.source == "trace":
        raise BadRequest(
            f"run {run_id!r} was started outside the gateway and is only monitored; "
            "stop it where it runs"
        )
    who = f"cancelled by {principal.user_name}"
    for _ in range(3):
        state = session.execute(select(Run.state).where(Run.id == run_id)).scalar_one()
        if is_terminal(state) or state is State.CANCELING:
            break
        if state is State.QUEUED:
            moved = transition(session, run_id, State.CANCELED, who, allowed_from={State.QUEUED})
        else:
            moved = transition(session, run_id, State.CANCELING, who, allowed_from=ACTIVE)
        if moved is not None:
            break
    session.commit()
    session.refresh(run)
    return run


def delete_run(session: Session, principal: Principal, run_id: str, *, force: bool) -> Run:
    """Delete a run: it is hidden from every read at once (marked deleted, committed),
    and a worker removes its folder and then its row, tasks, history and tokens
    (``purge``), outside the request; the sweep does it for any marked run left.

    A run that is still active is refused unless ``force``. Forced, a queued run is
    cancelled first; a run with a head job goes CANCELING, and is purged once its job
    has stopped. Returns the marked run: ``ready_to_purge`` tells whether a worker may
    remove it now or must stop its job first.
    """
    if principal.run_id is not None:
        raise BadRequest("a run-scoped token cannot delete runs")
    run = get_run(session, principal, run_id)
    if run.owner_id != principal.user_id and not tenancy.allows(
        principal, tenancy.DELETE_OTHERS_RUNS
    ):
        raise Forbidden(
            f"Cannot delete workflow {run_id}: deleting another user's run needs the role "
            f"{tenancy.OPERATION_ROLE[tenancy.DELETE_OTHERS_RUNS]!r} or above"
        )
    if not is_terminal(run.state) and not force:
        raise BadRequest(
            f"Cannot delete workflow {run_id}: it is still active (status: {run.state.value}); "
            "cancel it first or delete with force=true"
        )
    who = f"deleted by {principal.user_name}"
    if run.state is State.QUEUED:
        transition(session, run_id, State.CANCELED, who, allowed_from={State.QUEUED})
    run.deleted_at = utcnow()
    run_changes.note(session, run_id, run_changes.REMOVED)
    tokens.revoke_run_tokens(session, run_id)  # its head job's token goes with it, now
    session.flush()
    state = session.execute(select(Run.state).where(Run.id == run_id)).scalar_one()
    if run.source != "trace" and not is_terminal(state) and state is not State.CANCELING:
        transition(session, run_id, State.CANCELING, who, allowed_from=ACTIVE)
    session.commit()
    session.refresh(run)
    return run


def ready_to_purge(run: Run) -> bool:
    """Whether a deleted run may go now: nothing runs for it any more (it has ended and
    its head job, if any, has been seen to end too; or it is only monitored, its head job
    not ours to stop)."""
    settled = run.backend_handle is None or run.job_settled_at is not None
    return run.deleted_at is not None and (
        (is_terminal(run.state) and settled) or run.source == "trace"
    )


# The same rule as a query condition, for the sweep.
READY_TO_PURGE = Run.deleted_at.is_not(None) & (
    (Run.state.in_(TERMINAL) & (Run.backend_handle.is_(None) | Run.job_settled_at.is_not(None)))
    | (Run.source == "trace")
)


def purge(session: Session, run_id: str, run_dir: Path) -> None:
    """Remove a deleted run for good: its folder first, then its row (its tasks, state
    history and tokens go with it, by cascade). In that order, a purge cut short leaves
    the row marked, so the sweep's next purge finishes it; no folder outlives its row."""
    shutil.rmtree(run_dir, ignore_errors=True)
    session.execute(delete(Run).where(Run.id == run_id))
    session.commit()


def state_counts(session: Session) -> dict[str, int]:
    counts = {state.value: 0 for state in State}
    query = select(Run.state, func.count()).where(Run.deleted_at.is_(None)).group_by(Run.state)
    for state, count in session.execute(query):
        counts[State(state).value] = count
    return counts


# What the task views (WES TaskLog, Tower's task) show of a task: loaded, the rest not.
TASK_VIEW_COLUMNS = (
    Task.task_id,
    Task.run_id,
    Task.name,
    Task.process,
    Task.status,
    Task.exit_status,
    Task.submit,
    Task.start,
    Task.complete,
    Task.workdir,
    Task.native_id,
    Task.data,
)


def list_tasks(
    session: Session,
    principal: Principal,
    run_id: str,
    *,
    page_size: int | None,
    page_token: str | None,
    signing_key: bytes,
) -> Page[Task]:
    """A run's tasks in task-id order (the order Nextflow numbers them), keyset-paged."""
    get_run(session, principal, run_id)
    size = page_size_or_default(page_size)
    scope = f"tasks:{run_id}"
    query = select(Task).where(Task.run_id == run_id)
    if page_token:
        (after,) = decode_page_token(signing_key, scope, page_token)
        if not isinstance(after, int):
            raise InvalidField("page_token", "not a page token issued by this service")
        query = query.where(Task.task_id > after)
    tasks = list(
        session.execute(
            query.options(load_only(*TASK_VIEW_COLUMNS)).order_by(Task.task_id).limit(size + 1)
        ).scalars()
    )
    next_token = ""
    if len(tasks) > size:
        tasks = tasks[:size]
        next_token = encode_page_token(signing_key, scope, [tasks[-1].task_id])
    return Page(items=tasks, next_page_token=next_token)


def get_task(session: Session, principal: Principal, run_id: str, task_id: str) -> Task:
    get_run(session, principal, run_id)
    if not task_id.isdigit() or len(task_id) > 18:
        raise NotFound(f"task {task_id!r} not found in run {run_id!r}")
    task = session.execute(
        select(Task).where(Task.run_id == run_id, Task.task_id == int(task_id))
    ).scalar_one_or_none()
    if task is None:
        raise NotFound(f"task {task_id!r} not found in run {run_id!r}")
    return task


def read_log_text(run_id: str, stream: str, run_dir: Path) -> str:
    """The head job's console output (``stdout``) or error stream (``stderr``) so far."""
    path = run_files.log_path(run_dir, run_id, stream)
    if not run_files.inside(run_dir, path):
        return ""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


DEFAULT_MAX = 50
MAX_MAX = 1000
_FILTER = re.compile(r"(\w+):(\"[^\"]*\"|\S+)")


@dataclass(frozen=True)
class WorkflowPage:
    runs: list[Run]
    has_more: bool
    total: int | None
    next_cursor: str | None = None  # where the next page starts, as a keyset position


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


def _apply_search(query: Select, search: str) -> tuple[Select, list[State], tuple]:
    """Free text (a case-insensitive match on project, run name and session id, with *
    as a wildcard) and keyword:value filters, all of which must hold; ``status:`` may be
    repeated (any of them), ``tag:key=value`` (or ``tag:key``) matches the run's tags.
    Returns the query with every filter but the states, the states (any of them), and
    the (created_at, id) columns to page by (``by_tag``)."""
    states: list[State] = []
    tags: list[tuple[str, str | None]] = []
    for key, raw in _FILTER.findall(search):
        value = raw.strip('"')
        key = key.lower()
        if key == "status":
            try:
                states += STATES_OF_TOWER_STATUS[TowerStatus(value.upper())]
            except ValueError:
                raise InvalidField("search", f"status: unknown status {value!r}") from None
        elif key == "tag":
            tag_key, has_value, tag_value = value.partition("=")
            if not tag_key:
                raise InvalidField("search", "tag: expects tag:key or tag:key=value")
            tags.append((tag_key, tag_value if has_value else None))
        elif key == "username":
            query = query.where(Run.owner_id.in_(select(User.id).where(User.name == value)))
        elif key in ("projectname", "runname", "sessionid", "workflowid"):
            column = {
                "projectname": Run.project_name,
                "runname": Run.run_name,
                "sessionid": Run.session_id,
                "workflowid": Run.id,
            }[key]
            query = query.where(column == value)
        elif key == "label":
            query = query.where(labels.run_filter(value))
        elif key == "after":
            query = query.where(Run.created_at >= _date(key, value))
        elif key == "before":
            query = query.where(Run.created_at < _date(key, value))
        else:
            raise InvalidField("search", f"unknown filter {key}:")
    text = _FILTER.sub(" ", search).strip()
    if text:
        pattern = "%" + _like_escaped(text).replace("*", "%") + "%"
        query = query.where(
            or_(
                func.lower(Run.project_name).like(pattern.lower(), escape="\\"),
                func.lower(Run.pipeline).like(pattern.lower(), escape="\\"),
                func.lower(Run.run_name).like(pattern.lower(), escape="\\"),
                func.lower(Run.session_id).like(pattern.lower(), escape="\\"),
            )
        )
    query, keys = by_tag(query, list(dict.fromkeys(tags)))
    return query, list(dict.fromkeys(states)), keys


# ``totalSize`` counts the matches up to this many past the page's end: enough for any
# pager, and a count whose cost does not grow with the runs kept. Past it, the count
# says at least that many (``hasMore`` stays exact).
TOTAL_AHEAD = 1000


# The keys a count reads go in steps of this many, each step starting after the last:
# a planner serves a small LIMIT from the index's end, while for one LIMIT near its
# estimate of all the matches (a free-text filter's estimate is poor) PostgreSQL reads
# every candidate and sorts them.
COUNT_STEP = 50


def _in_steps(
    session: Session, query: Select, states: Sequence[State], keys: tuple, limit: int
) -> list[Any]:
    """Up to ``limit`` rows of ``query`` newest first, read ``COUNT_STEP`` at a time."""
    rows: list[Any] = []
    step_query = query
    while len(rows) < limit:
        step = newest_first(
            session, step_query, states, limit=min(COUNT_STEP, limit - len(rows)), keys=keys
        )
        rows += step
        if len(step) < COUNT_STEP:
            break
        step_query = after_key(query, keys, step[-1].created_at, step[-1].id)
    return rows


def list_workflows(
    session: Session,
    principal: Principal,
    *,
    max_: int | None,
    offset: int | None,
    search: str | None,
    include_total: bool,
    cursor: str | None = None,
    signing_key: bytes = b"",
) -> WorkflowPage:
    """A page of Tower's list, newest first. ``offset`` counts from the start of the
    list, or from just after ``cursor`` (a ``nextCursor`` this list gave: a keyset
    position, so that paging on with it reads the index from where the last page ended,
    however deep, and stays put while new runs arrive).

    The page's keys are read alone from the (scope[, state], created_at, id) indexes,
    then the page's runs by primary key: an offset skips index entries, never rows."""
    size, start = _page_bounds(max_, offset)
    query = visible(select(Run.created_at, Run.id), principal)
    states: list[State] = []
    keys: tuple = (Run.created_at, Run.id)
    if search:
        query, states, keys = _apply_search(query, search)
    scope = f"workflows:{principal.token_id if principal.run_id else principal.user_id}"
    scope += (
        f":{principal.workspace_id}:" + hashlib.sha256((search or "").encode()).hexdigest()[:16]
    )
    if cursor:
        created, run_id = decode_page_token(signing_key, scope, cursor, field="cursor")
        query = after_key(query, keys, _as_datetime(created), run_id)
    total = None
    if include_total:
        ahead = _in_steps(session, query, states, keys, start + size + TOTAL_AHEAD)
        total = len(ahead)
        rows = ahead[start : start + size + 1]
    else:
        rows = newest_first(session, query, states, limit=size + 1, offset=start, keys=keys)
    ids = [row.id for row in rows[:size]]
    found = {run.id: run for run in session.execute(select(Run).where(Run.id.in_(ids))).scalars()}
    runs = [found[run_id] for run_id in ids if run_id in found]
    next_cursor = None
    if len(rows) > size:
        last = rows[size - 1]
        next_cursor = encode_page_token(signing_key, scope, [last.created_at.isoformat(), last.id])
    return WorkflowPage(runs=runs, has_more=len(rows) > size, total=total, next_cursor=next_cursor)


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


def _like_escaped(text: str) -> str:
    """``text`` taken literally in a LIKE pattern whose escape character is a backslash."""
    return text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")


def _prefix(text: str) -> str:
    return _like_escaped(text) + "%"


@dataclass(frozen=True)
class TaskSearch:
    """A tasks-list search: a name prefix, ``process:`` (exact, or a prefix ending in *)
    and ``status:`` (comma-separated) filters."""

    name_prefix: str | None = None
    process: str | None = None
    process_prefix: str | None = None
    statuses: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, search: str | None) -> TaskSearch:
        if not search:
            return cls()
        process = process_prefix = None
        statuses: tuple[str, ...] | None = None
        for key, raw in _TASK_FILTER.findall(search):
            value = raw.strip('"')
            if key.lower() == "process":
                if value.endswith("*"):
                    process_prefix, process = value[:-1], None
                else:
                    process, process_prefix = value, None
            else:
                wanted = [part.strip().upper() for part in value.split(",") if part.strip()]
                unknown = sorted(set(wanted) - set(TASK_STATUSES))
                if unknown:
                    raise InvalidField("search", f"status: unknown task status {unknown[0]!r}")
                statuses = tuple(dict.fromkeys(wanted))
        text = _TASK_FILTER.sub(" ", search).strip()
        return cls(text or None, process, process_prefix, statuses)

    def apply(self, query: Select, dialect: str) -> Select:
        if self.process is not None:
            query = query.where(Task.process == self.process)
        if self.process_prefix is not None:
            query = query.where(Task.process.like(_prefix(self.process_prefix), escape="\\"))
        if self.statuses is not None:
            query = query.where(Task.status.in_(self.statuses))
        if self.name_prefix is not None:
            query = query.where(Task.name.like(_prefix(self.name_prefix), escape="\\"))
            if dialect == "sqlite":
                # A range lets the (run, name) index seek the prefix, which SQLite's LIKE
                # cannot; it makes the prefix case-sensitive, as LIKE is on PostgreSQL
                # (whose text_pattern_ops index serves the LIKE itself, whatever the
                # database's collation).
                query = query.where(
                    Task.name >= self.name_prefix, Task.name < self.name_prefix + "\U0010ffff"
                )
        return query

    def counted(self, loads: list[TaskLoad]) -> int | None:
        """How many tasks match, from the run's kept counters when they tell (no name or
        process prefix); None when they do not."""
        if self.name_prefix is not None or self.process_prefix is not None:
            return None
        key = task_loads.WHOLE_RUN
        if self.process is not None:
            if self.process in ("", task_loads.UNNAMED):  # the counters join these
                return None
            key = self.process
        row = next((load for load in loads if load.process == key), None)
        if row is None:
            return 0
        if self.statuses is None:
            return row.tasks
        return sum(getattr(row, task_loads.STATUS_COUNTER[status]) for status in self.statuses)


def _dense_ids(session: Session, run_id: str, count: int) -> bool:
    """Whether the run's task ids are exactly 1..count (as Nextflow numbers its tasks),
    so that the task at an offset of the id order is known without reading up to it. Two
    index look-ups (each alone, as SQLite answers a lone min or max from its index)."""
    if count == 0:
        return False
    where = Task.run_id == run_id
    low = session.execute(select(func.min(Task.task_id)).where(where)).scalar()
    high = session.execute(select(func.max(Task.task_id)).where(where)).scalar()
    return low == 1 and high == count


def list_workflow_tasks(
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
    """A page of a run's tasks and how many match. Its cost does not grow with the run:
    the total comes from the kept counters where they tell, the default order (task id)
    seeks its page by id when the ids are 1..N, and every other order and filter reads an
    index of (run, column, task id) from whichever end is nearer the page (an offset
    skips entries one by one, and on PostgreSQL visits each one's row)."""
    get_run(session, principal, run_id)
    size, start = _page_bounds(max_, offset)
    wanted = TaskSearch.parse(search)
    query = wanted.apply(select(Task).where(Task.run_id == run_id), session.get_bind().dialect.name)
    total = wanted.counted(task_loads.read(session, run_id))
    if total is None:
        total = session.execute(
            select(func.count()).select_from(query.with_only_columns(Task.id).subquery())
        ).scalar_one()
    if start >= total:
        return [], total
    descending = sort_dir == "desc"
    column = _SORTABLE[sort_by or "taskId"]
    if column is Task.task_id and wanted == TaskSearch() and _dense_ids(session, run_id, total):
        if descending:
            page = query.where(Task.task_id <= total - start).order_by(Task.task_id.desc())
        else:
            page = query.where(Task.task_id > start).order_by(Task.task_id)
        return list(session.execute(page.limit(size)).scalars()), total
    end = min(start + size, total)
    if total - end < start:  # nearer the end: read back from it, the page comes reversed
        page = query.order_by(*_task_order(column, not descending)).offset(total - end)
        return list(reversed(session.execute(page.limit(end - start)).scalars().all())), total
    page = query.order_by(*_task_order(column, descending)).offset(start)
    return list(session.execute(page.limit(size)).scalars()), total


def _task_order(column: Any, descending: bool) -> tuple:
    """A tasks page's order: ``column``, ties by task id the same way, so that its index
    of (run, column, task id) is read in one direction, and the opposite order is that
    index read back. Either way each database keeps NULLs at one end of the values (the
    low end on SQLite, the high end on PostgreSQL), so reversing both directions reverses
    the list exactly, NULLs included."""
    if column is Task.task_id:
        return (Task.task_id.desc() if descending else Task.task_id.asc(),)
    if descending:
        return column.desc(), Task.task_id.desc()
    return column.asc(), Task.task_id.asc()


def get_workflow_task(session: Session, principal: Principal, run_id: str, task_id: int) -> Task:
    return get_task(session, principal, run_id, str(task_id))


def tasks_for_progress(session: Session, run_id: str) -> list[tuple[str | None, str | None, dict]]:
    """(process, status, trace fields) of each task of a run; the fields carry the task's
    name too (the metrics label their quantiles with it)."""
    return [
        (row.process, row.status, {"name": row.name, **(row.data or {})})
        for row in session.execute(
            select(Task.process, Task.status, Task.name, Task.data).where(Task.run_id == run_id)
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
        except (BadRequest, Forbidden, NotFound):
            session.rollback()
            failed.append(run_id)
    return failed, deleted
