"""The application factory: one Connexion app serving the WES API (and, as they land,
the Tower API), with error shaping, auth and limits wired in one place."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import flask
from connexion import FlaskApp
from connexion.jsonifier import Jsonifier
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver

from wes_gateway.http import errors, oidc, readiness, ui, validation
from wes_gateway.http.request_metrics import RequestMetricsMiddleware
from wes_gateway.http.runtime import EXTENSION_KEY, Runtime, close_request_session
from wes_gateway.http.security import BodyLimitMiddleware, RuntimeMiddleware
from wes_gateway.http.tower import HANDLER_MODULES as TOWER_HANDLER_MODULES
from wes_gateway.http.tower.live_events import EventStreamMiddleware
from wes_gateway.http.tower.trace_reports import TraceReportsMiddleware
from wes_gateway.http.wes import handlers as wes_handlers
from wes_gateway.http.wes.run_submissions import RunSubmissionsMiddleware
from wes_gateway.infra import metrics
from wes_gateway.infra.config import TOWER_BASE_PATH, WES_BASE_PATH, Settings

AUTH_INSTRUCTIONS = """\
wes-gateway authenticates every API call (but service-info and /healthz) with a bearer token:

    Authorization: Bearer <token>

An operator creates tokens on the server:

    wes-gateway token create USER            # a user's token, printed once
    wes-gateway token create USER --admin    # an administrator's token
    wes-gateway token revoke TOKEN_ID

Users see and act on their own runs; administrators on all runs.
"""


def spec_dir() -> Path:
    """The copy of specs/ installed inside the package, or specs/ of a source tree."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "specs"
    return installed if installed.is_dir() else package.parent / "specs"


class _TerminatedInput:
    """Tells Werkzeug the body stream ends by itself (the ASGI bridge's stream does), so it
    reads chunked request bodies, under MAX_CONTENT_LENGTH, instead of ignoring them."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ["wsgi.input_terminated"] = True
        return self.wsgi_app(environ, start_response)


def _snake_case(operation_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


def _resolver(*modules) -> Resolver:
    """Each operationId answered by the function of its snake-case name in the first of
    ``modules`` that has one."""

    def resolve(operation_id: str):
        name = _snake_case(operation_id)
        for module in modules:
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"no handler {name} for operation {operation_id}")

    return Resolver(function_resolver=resolve)


def _healthz():
    return flask.jsonify({"status": "ok"})


def _metrics():
    runtime = flask.current_app.extensions[EXTENSION_KEY]
    body = metrics.exposition(
        counts=runtime.state_counts, depth=lambda: readiness.queue_depth(runtime)
    )
    return flask.Response(body, content_type=metrics.CONTENT_TYPE)


def _readyz():
    checks = readiness.check(flask.current_app.extensions[EXTENSION_KEY])
    ready = all(check["ok"] for check in checks.values())
    return flask.jsonify({"status": "ready" if ready else "not ready", "checks": checks}), (
        200 if ready else 503
    )


def _auth_instructions():
    return flask.Response(AUTH_INSTRUCTIONS, mimetype="text/plain")


def create_app(settings: Settings | None = None) -> FlaskApp:
    settings = settings or Settings()
    # Connexion warns on every request to an operation with two body types; it is by design.
    logging.getLogger("connexion.operations.openapi3").setLevel(logging.ERROR)
    runtime = Runtime.from_settings(settings)
    if settings.oidc_issuer:
        runtime.oidc = oidc.OidcAuth(settings)
    app = FlaskApp(
        __name__,
        specification_dir=spec_dir(),
        jsonifier=Jsonifier(json, separators=(",", ":")),
        validator_map=validation.VALIDATORS,
    )
    # A path with "//" is not one of ours (a 404), not a redirect to a merged path.
    app.app.url_map.merge_slashes = False
    app.add_api(
        "wes.openapi.yaml",
        base_path=WES_BASE_PATH,
        name="wes",
        resolver=_resolver(wes_handlers),
        validate_responses=settings.validate_responses,
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/ui"),
    )
    app.add_api(
        "tower.openapi.yaml",
        base_path=TOWER_BASE_PATH,
        name="tower",
        resolver=_resolver(*TOWER_HANDLER_MODULES),
        pythonic_params=True,
        validate_responses=settings.validate_responses,
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/ui"),
    )
    # Outside the exception handling, so it sees the status an error became.
    app.add_middleware(RequestMetricsMiddleware, MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(RuntimeMiddleware, MiddlewarePosition.BEFORE_SWAGGER, runtime=runtime)
    app.add_middleware(
        BodyLimitMiddleware, MiddlewarePosition.BEFORE_SWAGGER, max_bytes=settings.max_request_bytes
    )
    # After routing, auth and validation: the trace calls repeated while a pipeline runs.
    app.add_middleware(TraceReportsMiddleware, MiddlewarePosition.BEFORE_CONTEXT, runtime=runtime)
    # Likewise RunWorkflow's multipart bodies, read once as they arrive.
    app.add_middleware(RunSubmissionsMiddleware, MiddlewarePosition.BEFORE_CONTEXT, runtime=runtime)
    # The event streams, likewise: an open stream holds a coroutine, not a WSGI thread.
    app.add_middleware(EventStreamMiddleware, MiddlewarePosition.BEFORE_CONTEXT, runtime=runtime)
    flask_app = app.app
    flask_app.extensions[EXTENSION_KEY] = runtime
    flask_app.teardown_appcontext(close_request_session)
    flask_app.config.update(
        # The ASGI limit above guards every body read below it; this one guards, again,
        # the chunked bodies Werkzeug reads (an error inside the WSGI bridge's reads would
        # only look like a short body). No multipart body reaches Flask: RunWorkflow, the
        # one operation taking them, reads its own (run_submissions.py).
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
    )
    app.add_wsgi_middleware(_TerminatedInput)
    app.add_url_rule("/healthz", "healthz", _healthz)
    app.add_url_rule("/readyz", "readyz", _readyz)
    app.add_url_rule("/metrics", "metrics", _metrics)
    app.add_url_rule("/auth", "auth", _auth_instructions)
    ui.register(app)
    oidc.register(app)
    errors.register(app)
    runtime.engine_version.start()
    return app


def create_asgi_app() -> FlaskApp:
    """Entry point for ASGI servers (``uvicorn --factory wes_gateway.app:create_asgi_app``)."""
    return create_app(Settings())
