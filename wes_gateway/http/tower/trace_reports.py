"""The two trace calls every running pipeline repeats for as long as it runs, progress
(up to 100 task records) and heartbeat, served straight from the ASGI stack.

Connexion still routes, authenticates and validates them against the spec like every
other operation (same errors, same limits); only what comes after, the bridge into the
WSGI app and Flask's request dispatch, is skipped: for these calls it cost more than
storing the records. The handlers are the ones in ``tower.handlers``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from wes_gateway.http.asgi_responses import send_json
from wes_gateway.http.runtime import Runtime
from wes_gateway.http.tower import handlers
from wes_gateway.http.validation import PARSED_BODY
from wes_gateway.infra.config import TOWER_BASE_PATH
from wes_gateway.infra.logs import about_run

HANDLERS: dict[str, Callable[..., dict[str, Any]]] = {
    "UpdateTraceProgress": handlers.trace_progress,
    "UpdateTraceHeartbeat": handlers.trace_heartbeat,
}


class TraceReportsMiddleware:
    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = scope.get("extensions") or {}
        routing = extensions.get("connexion_routing") or {}
        handler = HANDLERS.get(routing.get("operation_id") or "")
        body = scope.get(PARSED_BODY)
        if (
            handler is None
            or routing.get("api_base_path") != TOWER_BASE_PATH
            or not isinstance(body, dict)  # not checked by our JSON validator: the usual way
        ):
            await self.app(scope, receive, send)
            return
        claims = extensions["connexion_context"]["token_info"]
        run_id = scope["path_params"]["workflowId"]
        # Connexion has checked it is an int64 when present.
        workspace = parse_qs(scope.get("query_string", b"").decode()).get("workspaceId")
        workspace_id = int(workspace[-1]) if workspace else None
        result = await run_in_threadpool(self._handle, handler, claims, run_id, body, workspace_id)
        await send_json(send, result)

    def _handle(
        self, handler, claims: dict, run_id: str, body: dict, workspace_id: int | None
    ) -> dict[str, Any]:
        with about_run(run_id), self.runtime.db.session() as session:
            return handler(session, claims, run_id, body, workspace_id)
