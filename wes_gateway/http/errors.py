"""Every error the service returns, and the one place that shapes error bodies.

Handlers and the run service raise ``ApiError`` subclasses; framework errors (routing,
validation, auth) arrive as Starlette/Connexion HTTP exceptions. Both leave as JSON in the
shape of the API that was called: ``{"msg", "status_code"}`` for WES (and anything that is
not Tower), ``{"message"}`` under ``/api``. No stack trace ever reaches a client.
"""

from __future__ import annotations

import json
import logging
import re

import connexion.context
import flask
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from werkzeug.routing import Map

from wes_gateway.domain.errors import ApiError
from wes_gateway.infra.config import TOWER_BASE_PATH

log = logging.getLogger(__name__)


def error_body(path: str, status: int, message: str) -> dict[str, object]:
    if path == TOWER_BASE_PATH or path.startswith(TOWER_BASE_PATH + "/"):
        return {"message": message}
    return {"msg": message, "status_code": status}


def _response(request: ConnexionRequest, status: int, message: str, headers=None):
    body = json.dumps(error_body(request.url.path, status, message))
    return ConnexionResponse(
        status_code=status,
        mimetype="application/json",
        content_type="application/json",
        body=body,
        headers=headers or {},
    )


def _http_message(request: ConnexionRequest, exc: HTTPException) -> tuple[int, str]:
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else ""
    if status == 404:
        return status, f"no such path: {request.method} {request.url.path}"
    if status == 405:
        return status, f"method {request.method} is not allowed on {request.url.path}"
    if status == 415:
        # Not a documented WES code: an unreadable body is a bad request like any other.
        return 400, _content_type_problem(request, detail)
    if status == 413:
        return status, "request body too large"
    return status, detail or (getattr(exc, "title", None) or "error")


def _content_type_problem(request: ConnexionRequest, detail: str) -> str:
    """``Content-Type: ...`` for a body of a type the operation does not take. Connexion's
    words are "Invalid Content-type (x), expected ['a', 'b']"; the list is what matters."""
    sent = request.headers.get("content-type", "").split(";")[0].strip() or "none"
    expected = re.findall(r"'([^']+)'", detail.rpartition("expected")[2])
    if not expected:
        return f"Content-Type: {sent} is not accepted here"
    wanted = expected[0] if len(expected) == 1 else "one of " + ", ".join(expected)
    return f"Content-Type: {sent} is not accepted here; send {wanted}"


def handle_api_error(request: ConnexionRequest, exc: ApiError) -> ConnexionResponse:
    return _response(request, exc.status, exc.message)


def _http_exception_handler(url_map: Map):
    def handle_http_exception(request: ConnexionRequest, exc: HTTPException) -> ConnexionResponse:
        status, message = _http_message(request, exc)
        headers = dict(exc.headers or {})
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if status == 405:
            # Each method of a path is its own route below us, so the router's Allow
            # names one route's methods; list every method the path has.
            allowed = url_map.bind("localhost").allowed_methods(request.url.path)
            headers["Allow"] = ", ".join(sorted(set(allowed) - {"OPTIONS"}))
        if status >= 500:
            log.error("HTTP %s on %s %s: %s", status, request.method, request.url.path, message)
        return _response(request, status, message, headers)

    return handle_http_exception


def handle_database_down(
    request: ConnexionRequest, exc: OperationalError | PoolTimeout
) -> ConnexionResponse:
    """The database did not answer, or every pooled connection stayed busy too long."""
    log.error("database unavailable: %s", getattr(exc, "orig", None) or exc)
    return _response(
        request, 503, "the database is unavailable; try again shortly", {"Retry-After": "5"}
    )


def handle_unexpected(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _response(request, 500, "internal server error")


def _outside_the_spec():
    """A Flask route of an API blueprint reached without Connexion having matched an
    operation (its router is stricter, e.g. about control characters in a path): 404."""
    if not flask.request.blueprint:
        return
    try:
        connexion.context.operation.operation_id  # noqa: B018 - raises when unbound
    except RuntimeError:
        raise HTTPException(404) from None


def register(app) -> None:
    """Install the handlers on a Connexion app (not the inner Flask app, which would miss
    errors raised by the routing, validation and security middleware)."""
    app.app.before_request(_outside_the_spec)
    handle_http_exception = _http_exception_handler(app.app.url_map)
    app.add_error_handler(ApiError, handle_api_error)
    app.add_error_handler(ProblemException, handle_http_exception)
    app.add_error_handler(HTTPException, handle_http_exception)
    app.add_error_handler(OperationalError, handle_database_down)
    app.add_error_handler(PoolTimeout, handle_database_down)
    app.add_error_handler(Exception, handle_unexpected)
