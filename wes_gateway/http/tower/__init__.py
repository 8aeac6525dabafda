"""The Tower (Seqera Platform) API: handlers (one per operationId), the views that shape
its bodies, and the trace calls served from the ASGI stack.

``HANDLER_MODULES`` lists the modules whose functions answer operationIds (in snake
case); a capability with operations of its own adds its module there."""

from wes_gateway.http.tower import (
    credentials,
    handlers,
    labels,
    launches,
    live_events,
    pipelines,
    teams,
)

HANDLER_MODULES = (handlers, credentials, launches, pipelines, labels, teams, live_events)
