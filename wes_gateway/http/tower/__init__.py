"""The Tower (Seqera Platform) API: handlers (one per operationId), the views that shape
its bodies, and the trace calls served from the ASGI stack."""
