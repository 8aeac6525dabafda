"""The web dashboard: static pages served at ``/`` that act only through the two public
APIs, with the user's own token, so the APIs' access rules are the pages' too.

Nothing here renders user data on the server. The pages build every element from API
answers as text nodes (never as markup), and the Content-Security-Policy allows scripts
and styles from this origin only, so a run name or a log line cannot become code.
"""

from __future__ import annotations

from pathlib import Path

import flask
from connexion import FlaskApp

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


def register(app: FlaskApp) -> None:
    app.add_url_rule("/", "dashboard", _page)
    app.add_url_rule("/ui/<path:name>", "dashboard_asset", _asset)
