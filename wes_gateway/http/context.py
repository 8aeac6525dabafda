"""HTTP handlers, one module per API, one function per operationId. They translate the
request into a call on the run service and the result into a body through a view."""

from __future__ import annotations

import flask

from wes_gateway.domain.tokens import Principal
from wes_gateway.http import runtime


def principal(token_info: dict) -> Principal:
    return Principal.from_claims(token_info)


def public_base_url() -> str:
    """Where clients reach us: the configured public URL, else what this request used."""
    configured = runtime.current().settings.public_url
    if configured:
        return configured.rstrip("/")
    return flask.request.host_url.rstrip("/")
