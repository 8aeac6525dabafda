"""Live updates by server-sent events: a run's stream (StreamWorkflowEvents) and a
workspace's run-list stream (StreamWorkflowListEvents), and the short-lived tickets a
browser opens them with (an EventSource cannot send an Authorization header, and the API
token must never go into a URL).

The streams are served straight from the ASGI stack, as the trace reports are: Connexion
routes, authenticates (bearer token or ticket) and validates them like every other
operation, then ``EventStreamMiddleware`` answers, so an open stream holds no WSGI
thread, only a coroutine and a subscription to the process's ``ChangeFeed``. Each is
authorised as the operation it mirrors (the run's describe, the workspace's list).
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from wes_gateway.domain import run_changes, run_files, runs, task_loads, tenancy
from wes_gateway.domain.errors import Forbidden, InvalidField
from wes_gateway.domain.ids import INT64_MAX
from wes_gateway.domain.models import Run
from wes_gateway.domain.run_changes import Change
from wes_gateway.domain.states import is_terminal, tower_status
from wes_gateway.domain.task_changes import TaskCursor
from wes_gateway.domain.tokens import Principal
from wes_gateway.http import dispatch
from wes_gateway.http.change_feed import OVERFLOW, ChangeFeed
from wes_gateway.http.runtime import Runtime, current, request_session
from wes_gateway.http.security import SCOPE_KEY
from wes_gateway.http.tower import views
from wes_gateway.http.tower.acting import acting
from wes_gateway.http.tower.stream_access import RECHECK_SECONDS, StreamAccess, token_works
from wes_gateway.infra.config import TOWER_BASE_PATH

TICKET_SECONDS = 60
_SALT = "wes-gateway-event-stream-ticket"
RETRY_MS = 3000
LOG_TICK = 2.0  # seconds between looks at an active run's console
LOG_PUSH_BYTES = 64 * 1024  # new console lines up to this go in the event itself
REPLAY_LIMIT = 1000  # more changes than this to resume: a reset instead

RUN_STREAM = "StreamWorkflowEvents"
LIST_STREAM = "StreamWorkflowListEvents"


# --- tickets --------------------------------------------------------------------------


def _serializer(runtime: Runtime) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime.settings.signing_key, salt=_SALT)


def _ticket(token_info: dict, run_id: str | None, workspace_id: int | None) -> dict[str, Any]:
    claims = {key: value for key, value in token_info.items() if key != "ticket_for"}
    ticket = _serializer(current()).dumps({"c": claims, "run": run_id, "ws": workspace_id})
    return {"ticket": ticket, "expiresIn": TICKET_SECONDS}


def create_workflow_events_ticket(workflow_id: str, token_info: dict, workspace_id=None):
    who = acting(token_info, workspace_id, "CreateWorkflowEventsTicket")
    runs.get_run(request_session(), who, workflow_id, Run.id)
    return _ticket(token_info, workflow_id, workspace_id)


def create_workflow_list_events_ticket(token_info: dict, workspace_id=None):
    acting(token_info, workspace_id, "CreateWorkflowListEventsTicket")
    return _ticket(token_info, None, workspace_id)


async def ticket_info(apikey: str, request: Any) -> dict[str, Any] | None:
    """Connexion's check of ``?ticket=``: the claims of the token it was made with (and
    what stream it opens), or None (a 401) when forged or expired."""
    runtime: Runtime = request.scope[SCOPE_KEY]
    try:
        data = _serializer(runtime).loads(apikey, max_age=TICKET_SECONDS)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), dict):
        return None
    if not await run_in_threadpool(_still_good, runtime, data["c"]):
        return None
    return {**data["c"], "ticket_for": {"run": data.get("run"), "ws": data.get("ws")}}


def _still_good(runtime: Runtime, claims: dict) -> bool:
    """Whether the token a ticket was made with still works (not revoked meanwhile)."""
    with runtime.db.session() as session:
        return token_works(session, claims)


# --- the streams ----------------------------------------------------------------------


def _event(name: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    lines = [] if event_id is None else [f"id: {event_id}"]
    lines += [f"event: {name}", "data: " + json.dumps(data, separators=(",", ":"))]
    return ("\n".join(lines) + "\n\n").encode()


def _change_event(change: Change) -> bytes:
    return _event("change", {"workflowId": change.run_id, "kinds": list(change.kinds)}, change.seq)


def _last_event_id(scope: Scope, query: dict[str, list[str]]) -> int | None:
    headers = dict(scope.get("headers") or [])
    raw = headers.get(b"last-event-id")
    if raw is not None and raw.strip():
        text = raw.decode("latin-1").strip()
        if not text.isdigit() or len(text) > 19:
            raise InvalidField("Last-Event-ID", f"not an event id: {text[:40]!r}")
        return min(int(text), INT64_MAX)  # beyond any id: a reset
    values = query.get("lastEventId")
    return int(values[-1]) if values else None  # Connexion checked it is an int64


def _last_line_end(path, size: int) -> int:
    """The offset just past the file's last newline (0 when it has none in its tail)."""
    tail = min(size, LOG_PUSH_BYTES)
    try:
        with open(path, "rb") as stream:
            stream.seek(size - tail)
            data = stream.read(tail)
    except OSError:
        return 0
    return size - tail + data.rfind(b"\n") + 1 if b"\n" in data else size - tail


class EventStreamMiddleware:
    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self.feed = ChangeFeed(runtime.db, runtime.settings)
        self.access = StreamAccess(runtime.db)
        runtime.change_feed = self.feed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = scope.get("extensions") or {}
        routing = extensions.get("connexion_routing") or {}
        operation = routing.get("operation_id")
        if operation not in (RUN_STREAM, LIST_STREAM) or (
            routing.get("api_base_path") != TOWER_BASE_PATH
        ):
            await self.app(scope, receive, send)
            return
        claims = extensions["connexion_context"]["token_info"]
        query = parse_qs(scope.get("query_string", b"").decode())
        workspace = query.get("workspaceId")
        workspace_id = int(workspace[-1]) if workspace else None
        run_id = scope["path_params"].get("workflowId") if operation == RUN_STREAM else None
        made_for = claims.get("ticket_for")
        if made_for is not None and (made_for.get("run"), made_for.get("ws")) != (
            run_id,
            workspace_id,
        ):
            raise Forbidden("ticket: it was made for another event stream")
        last_id = _last_event_id(scope, query)
        who, run = await run_in_threadpool(self._authorise, operation, claims, run_id, workspace_id)
        if run is not None:
            wants: Callable[[Change], bool] = lambda change: change.run_id == run.id  # noqa: E731
        else:
            wants = lambda change: run_changes.concerns(change, who)  # noqa: E731
        still_allowed = functools.partial(
            self.access.allowed, claims, operation, workspace_id, run_id
        )
        subscription = self.feed.subscribe(who.user_id, wants)
        try:
            stream = Stream(self.runtime, subscription, wants, run, last_id, still_allowed)
            await stream.serve(receive, send)
        finally:
            self.feed.unsubscribe(subscription)

    def _authorise(
        self, operation: str, claims: dict, run_id: str | None, workspace_id: int | None
    ) -> tuple[Principal, Run | None]:
        """The caller as the run's describe (or the workspace's list) sees them: the same
        refusals (401 came before, 403 for the workspace, 404 for a run not theirs)."""
        with self.runtime.db.session() as session:
            who = tenancy.acting(session, Principal.from_claims(claims), workspace_id, operation)
            if run_id is None:
                return who, None
            run = runs.get_run(session, who, run_id)
            session.expunge(run)
            return who, run


Taken = list[tuple[int, dict[str, Any]] | None]  # a batch's events (None: a reset)


class Stream:
    """One open stream: what it replays or announces first, then the live changes, the
    console's growth (for a run) and keep-alive comments, until the client leaves, the
    stream has lasted ``events_stream_seconds``, or its caller may no longer read it
    (``still_allowed``, asked every ``stream_access.RECHECK_SECONDS``)."""

    def __init__(
        self,
        runtime: Runtime,
        subscription,
        wants: Callable[[Change], bool],
        run: Run | None,
        last_id: int | None,
        still_allowed: Callable[[], bool],
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.subscription = subscription
        self.wants = wants
        self.run = run
        self.last_id = last_id
        self.still_allowed = still_allowed
        self.sent = 0
        self.floor = 0
        self.console_size = -1
        self.console_at: int | None = None  # where the whole lines end, as last read
        self.active = run is not None and not is_terminal(run.state)
        self.tasks = TaskCursor(run.id, datetime.now(UTC)) if run is not None else None

    def _start(self) -> tuple[int, list[Change] | None]:
        """The newest change number, and the changes to replay since ``last_id`` (None:
        they are no longer all kept, or too many; the client must read everything)."""
        with self.runtime.db.session() as session:
            first, last = run_changes.bounds(session)
            if self.last_id is None:
                return last, []
            if not run_changes.resumable(first, last, self.last_id):
                return last, None
            changes = run_changes.since(
                session,
                self.last_id,
                run_id=self.run.id if self.run is not None else None,
                limit=REPLAY_LIMIT * 5,
            )
        if len(changes) == REPLAY_LIMIT * 5:  # more than are read at once: start over
            return last, None
        changes = [change for change in changes if self.wants(change)]
        if len(changes) > REPLAY_LIMIT:
            return last, None
        return last, changes

    async def serve(self, receive: Receive, send: Send) -> None:
        head, replay = await run_in_threadpool(self._start)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache, no-store"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        body = [f"retry: {RETRY_MS}\n\n".encode()]
        if replay is None:
            body.append(_event("reset", {"reason": "read everything again"}, head))
            self.sent = head
        elif self.last_id is None:
            body.append(_event("ready", {}, head))
            self.sent = head
        else:
            body.extend(_change_event(change) for change in replay)
            self.sent = max([self.last_id, *(change.seq for change in replay)])
        self.floor = self.sent
        if self.run is not None:
            await self._look_at_console(body, announce=False)
        await self._send(send, b"".join(body))

        left = asyncio.ensure_future(self._client_left(receive))
        deadline = time.monotonic() + self.settings.events_stream_seconds
        idle_since = time.monotonic()
        next_check = time.monotonic() + RECHECK_SECONDS
        tick = LOG_TICK if self.run is not None else self.settings.events_keepalive
        try:
            while not left.done():
                now = time.monotonic()
                remaining = deadline - now
                if remaining <= 0:
                    break
                if now >= next_check:
                    if not await run_in_threadpool(self.still_allowed):
                        break  # revoked, expired, or no longer a reader of it: end here
                    next_check = time.monotonic() + RECHECK_SECONDS
                getter = asyncio.ensure_future(self.subscription.queue.get())
                done, _ = await asyncio.wait(
                    {getter, left},
                    timeout=max(0.0, min(tick, remaining, next_check - now)),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if getter not in done:
                    getter.cancel()
                out: list[bytes] = []
                if getter in done:
                    taken: Taken = []
                    self._take(getter.result(), taken)
                    while not self.subscription.queue.empty():
                        self._take(self.subscription.queue.get_nowait(), taken)
                    if self.run is not None:
                        await self._add_details(taken)
                    for item in taken:
                        if item is None:
                            out.append(_event("reset", {"reason": "too many changes"}, self.sent))
                        else:
                            out.append(_event("change", item[1], item[0]))
                if self.run is not None:
                    await self._look_at_console(out, announce=True)
                if out:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= self.settings.events_keepalive:
                    out.append(b": keep-alive\n\n")
                    idle_since = time.monotonic()
                if out and not left.done():
                    await self._send(send, b"".join(out))
        finally:
            left.cancel()
        if not left.done():
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _take(self, change: Change | None, taken: Taken) -> None:
        """The event of a change from the feed (None: a reset). Ids only grow: on
        PostgreSQL two transactions may commit in the other order than they were
        numbered, and the later one to arrive goes out under the highest id sent so far."""
        if change is OVERFLOW:
            taken.append(None)
            return
        if change.seq <= self.floor:  # the replay (or the starting point) covered it
            return
        self.sent = max(self.sent, change.seq)
        taken.append((self.sent, {"workflowId": change.run_id, "kinds": list(change.kinds)}))

    async def _add_details(self, taken: Taken) -> None:
        """On a run's stream, a change of its status or tasks carries what the run page
        shows of them, so the page need not read them again: the run's Tower status, WES
        state and progress, and for a change of tasks the records written since the last
        event (``task_changes``: at most ``task_changes.MOST``, in the items' shape of
        ListWorkflowTasks; an empty list when an earlier event carried them). Without
        ``tasks`` in it (too many changed, the run has ended, or a replayed change), the
        client reads the tasks list again. One read for the changes that came together."""
        told = [
            item[1]
            for item in taken
            if item is not None
            and (run_changes.STATUS in item[1]["kinds"] or run_changes.TASKS in item[1]["kinds"])
        ]
        if not told:
            return
        with_tasks = any(run_changes.TASKS in data["kinds"] for data in told)
        details = await run_in_threadpool(self._details, with_tasks)
        rows = details.pop("tasks", None)
        for data in told:
            data.update(details)
            if rows is not None and run_changes.TASKS in data["kinds"]:
                data["tasks"], rows = rows, []

    def _details(self, with_tasks: bool) -> dict[str, Any]:
        assert self.run is not None and self.tasks is not None
        with self.runtime.db.session() as session:
            run = run_changes.progress_of(session, self.run.id)
            if run is None:
                return {}
            self.active = not is_terminal(run.state)
            found: dict[str, Any] = {
                "status": tower_status(run.state).value,
                "state": run.state.value,
                "progress": views.progress(run, task_loads.read(session, run.id)),
            }
            if with_tasks and self.active:
                changed = self.tasks.changed(session)
                if changed is not None:
                    changed.sort(key=lambda task: task.task_id)
                    found["tasks"] = [{"task": views.task(task)} for task in changed]
            return found

    async def _look_at_console(self, out: list[bytes], *, announce: bool) -> None:
        """Whether the run's console grew since the last look: a ``log`` event (without
        an id: the console is a file, not a numbered change) carrying the new whole lines
        when they fit in one page of the log endpoint, with the page tokens they run
        between (``from``, ``next``), so a page that has read up to ``from`` appends them
        without a request. While the run is active, asks the workers to copy a cloud
        head job's new lines, as reading the log does."""
        assert self.run is not None
        grown = await run_in_threadpool(self._console)
        if announce and grown is not None:
            data: dict[str, Any] = {"workflowId": self.run.id, "kinds": [run_changes.LOG]}
            data.update(grown)
            out.append(_event("change", data))

    def _console(self) -> dict[str, Any] | None:
        run = self.run
        assert run is not None
        run_dir = self.runtime.run_dir(run.id)
        if self.active and run.backend_handle:
            dispatch.refresh_log(self.runtime.celery, run, run_dir)
        path = run_files.console_file(run_dir, run.id)
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        if size <= self.console_size:
            return None
        self.console_size = size
        if self.console_at is None:  # the first look: from the end of the last whole line
            self.console_at = _last_line_end(path, size)
            return None
        start = f"f/{self.console_at}"
        page = run_files.read_page(path, start, LOG_PUSH_BYTES)
        if page.truncated:  # more than an event carries: the client reads up to the end
            self.console_at = _last_line_end(path, size)
            return {}
        self.console_at = int(page.forward_token.split("/", 1)[1])
        if not page.entries:  # no line ended yet
            return None
        return {"from": start, "next": page.forward_token, "entries": page.entries}

    @staticmethod
    async def _send(send: Send, chunk: bytes) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    @staticmethod
    async def _client_left(receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return


# What the spec's operationIds resolve to; ``EventStreamMiddleware`` answers both before
# a request could reach them (a stream is not a WSGI response).
def stream_workflow_events(workflow_id: str, token_info: dict, workspace_id=None, **_):
    raise RuntimeError("event streams are served by EventStreamMiddleware")


def stream_workflow_list_events(token_info: dict, workspace_id=None, **_):
    raise RuntimeError("event streams are served by EventStreamMiddleware")
