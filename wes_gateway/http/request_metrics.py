"""The ASGI middleware that times every HTTP request for Prometheus (the metric itself
is declared with the others in ``wes_gateway.infra.metrics``)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wes_gateway.infra.metrics import HTTP_REQUESTS


class RequestMetricsMiddleware:
    """Times every HTTP request, labelled by its OpenAPI operation (low cardinality: never
    the raw path, which holds run ids)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            HTTP_REQUESTS.labels(_route(scope), scope.get("method", ""), str(status)).observe(
                time.perf_counter() - started
            )


def _route(scope: Scope) -> str:
    routing = (scope.get("extensions") or {}).get("connexion_routing") or {}
    operation = routing.get("operation_id")
    if operation:
        return f"{routing.get('api_base_path', '')} {operation}".strip()
    path = scope.get("path", "")
    if path in ("/", "/healthz", "/readyz", "/metrics", "/auth"):
        return path
    if path.startswith("/ui/"):
        return "/ui/"
    return "other"
