"""The web dashboard: static pages served at ``/`` that act only through the two public
APIs, with the user's own token, so the APIs' access rules are the pages' too.

Nothing here renders user data on the server. The pages build every element from API
answers as text nodes (never as markup), and the Content-Security-Policy allows scripts
and styles from this origin only, so a run name or a log line cannot become code.
"""

from __future__ import annotations

import json
from pathlib import Path

import flask
from connexion import FlaskApp

from wes_gateway.domain import task_loads
from wes_gateway.domain.states import TERMINAL, TaskStatus, tower_status
from wes_gateway.http.oidc import LOGIN_PATH, SESSION_PATH
from wes_gateway.http.runtime import current
from wes_gateway.infra.config import TOWER_BASE_PATH, WES_BASE_PATH

STATIC = Path(__file__).resolve().parent / "static"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _page() -> flask.Response:
    response = flask.send_from_directory(STATIC, "index.html", max_age=0)
    response.headers.update(_HEADERS)
    return response


def _asset(name: str) -> flask.Response:
    response = flask.send_from_directory(STATIC, name, max_age=300)
    response.headers.update(_HEADERS)
    return response


def facts() -> dict[str, object]:
    """What the pages must agree on with the service, taken from where the service keeps
    it: the APIs' base paths, the task statuses (and the progress counter each is counted
    in) and the Tower statuses of a finished run."""
    return {
        "TOWER": TOWER_BASE_PATH,
        "WES": WES_BASE_PATH,
        "TASK_STATUSES": [status.value for status in TaskStatus],
        "TASK_STATUS_COUNTERS": task_loads.STATUS_COUNTER,
        "FINAL_RUN_STATUSES": sorted({tower_status(state).value for state in TERMINAL}),
    }


def single_sign_on() -> dict[str, str] | None:
    """The dashboard's "Sign in with ..." button: the provider and where to go, or None
    when single sign-on is not configured."""
    settings = current().settings
    if not (settings.oidc_issuer and settings.oidc_client_id):
        return None
    return {"issuer": settings.oidc_issuer, "login": LOGIN_PATH, "session": SESSION_PATH}


def _facts_module() -> flask.Response:
    values = {**facts(), "SSO": single_sign_on()}
    body = "".join(
        f"export const {name} = {json.dumps(value)};\n" for name, value in values.items()
    )
    response = flask.Response(body, mimetype="text/javascript")
    response.cache_control.max_age = 300
    response.headers.update(_HEADERS)
    return response


def register(app: FlaskApp) -> None:
    app.add_url_rule("/", "dashboard", _page)
    # A module generated from the service's own values (matched before the static files).
    app.add_url_rule("/ui/facts.js", "dashboard_facts", _facts_module)
    app.add_url_rule("/ui/<path:name>", "dashboard_asset", _asset)
