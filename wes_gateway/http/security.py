"""Authentication as the OpenAPI files declare it (``x-bearerInfoFunc``), and the ASGI
middleware that hands each request the service runtime and bounds request bodies."""

from __future__ import annotations

from typing import Any

from connexion.exceptions import Forbidden
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wes_gateway.domain.models import Run
from wes_gateway.domain.states import is_terminal
from wes_gateway.domain.tokens import authenticate
from wes_gateway.http.oidc import looks_like_jwt
from wes_gateway.http.runtime import Runtime
from wes_gateway.infra.config import TOWER_BASE_PATH

SCOPE_KEY = "wes_gateway.runtime"
TRACE_PATH = f"{TOWER_BASE_PATH}/trace/"
TICKET_SUFFIX = "events/ticket"


def _principal_claims(
    runtime: Runtime, token: str, path: str, method: str
) -> dict[str, Any] | None:
    """The claims of ``token`` for a ``method`` request to ``path``. A run's own token
    stops working when its run ends, but for the trace calls: Nextflow may still retry
    ``complete``, and the trace service answers those without changing a finished run.
    A token whose scope does not allow the method is a 403 naming the scope. A JWT goes
    to the OpenID provider's verifier when single sign-on is configured."""
    with runtime.db.session() as session:
        principal = authenticate(session, token)
        if principal is None and runtime.oidc is not None and looks_like_jwt(token):
            principal = runtime.oidc.authenticate(session, token)
        if principal is None:
            return None
        # Asking for an event stream's ticket only reads (a read-only token may).
        refusal = principal.scope_refusal("GET" if path.endswith(TICKET_SUFFIX) else method)
        if refusal is not None:
            raise Forbidden(detail=refusal)
        if principal.run_id is not None and not path.startswith(TRACE_PATH):
            state = session.execute(
                select(Run.state).where(Run.id == principal.run_id)
            ).scalar_one_or_none()
            if state is None or is_terminal(state):
                return None
    return principal.claims()


async def bearer_info(token: str, request: Any) -> dict[str, Any] | None:
    """Connexion's bearer check: the token's claims, or None (a 401)."""
    runtime: Runtime = request.scope[SCOPE_KEY]
    # The lookup is a database query: keep it off the event loop.
    return await run_in_threadpool(
        _principal_claims, runtime, token, request.url.path, request.method
    )


async def basic_info(username: str, password: str, request: Any) -> dict[str, Any] | None:
    """Connexion's basic check: Nextflow sends a legacy token as user ``@token``."""
    if username != "@token":
        return None
    return await bearer_info(password, request)


class RuntimeMiddleware:
    """Puts the runtime into every request's scope, where the security checks find it."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[SCOPE_KEY] = self.runtime
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses URLs holding a NUL character (no database stores or matches one) with a
    400, and bodies over the limit with 413 before anything buffers them: at once when
    Content-Length says so, and while streaming a chunked body (one Connexion would read
    into memory, or a multipart upload being read by ``RunSubmissionsMiddleware``)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"").lower():
            raise HTTPException(400, "URL: holds a NUL character")
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                raise HTTPException(400, "Content-Length: not a number")
            if int(length) > self.max_bytes:
                raise HTTPException(413)
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413)
            return message

        await self.app(scope, limited_receive, send)
