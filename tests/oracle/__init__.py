"""The official GA4GH WES 1.1 spec as a test oracle: every response the suite receives
under the WES base path is validated against it, and error bodies are held to the
``{"msg", "status_code"}`` shape the spec's ErrorResponse describes."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import httpx
import schemathesis

OFFICIAL_SPEC = Path(__file__).resolve().parent / "ga4gh-wes-1.1.0.bundled.openapi.yaml"
WES_PREFIX = "/ga4gh/wes/v1"


@cache
def official_schema():
    return schemathesis.openapi.from_path(str(OFFICIAL_SPEC))


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    raw = official_schema().raw_schema["paths"]
    patterns = []
    for template in raw:
        regex = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        patterns.append((re.compile(regex), template))
    return patterns


def operation_for(method: str, path: str):
    """The official operation for a request, or None for paths the spec does not have."""
    if not path.startswith(WES_PREFIX):
        return None
    relative = path[len(WES_PREFIX) :] or "/"
    for pattern, template in _templates():
        if pattern.match(relative):
            methods = official_schema().raw_schema["paths"][template]
            if method.lower() in methods:
                return official_schema()[template][method.upper()]
    return None


def assert_error_shape(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"msg", "status_code"}, body
    assert isinstance(body["msg"], str) and body["msg"], body
    assert body["status_code"] == response.status_code, body
    assert "Traceback" not in body["msg"]


def check_response(response: httpx.Response) -> None:
    """httpx response hook: validate WES responses against the official spec."""
    path = response.request.url.path
    if not path.startswith(WES_PREFIX) or path.startswith(WES_PREFIX + "/ui"):
        return
    response.read()
    try:
        response.request.read()
    except httpx.StreamError:
        # A streamed upload cannot be read twice; the check needs the response only.
        request = response.request
        response.request = httpx.Request(request.method, request.url, headers=request.headers)
    if response.status_code >= 400:
        assert_error_shape(response)
    operation = operation_for(response.request.method, path)
    if operation is not None:
        operation.validate_response(response)
