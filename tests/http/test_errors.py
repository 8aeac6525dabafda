"""Every error is JSON in the API's shape, never a framework page or a stack trace."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from tests.conftest import WES
from wes_gateway.domain import runs


def test_unknown_path_under_wes(client, alice):
    response = client.get(f"{WES}/nothing/here", headers=alice)
    assert response.status_code == 404
    assert response.json() == {"msg": f"no such path: GET {WES}/nothing/here", "status_code": 404}


@pytest.mark.parametrize("path", ["/api/workflow//download", f"{WES}/runs//status"])
def test_a_double_slash_is_not_found_not_redirected(client, alice, path):
    response = client.get(path, headers=alice)
    assert response.status_code == 404
    assert "no such path" in str(response.json())


@pytest.mark.backing_independent
def test_a_relative_data_folder_is_fixed_at_start(tmp_path, monkeypatch):
    from wes_gateway.infra.config import Settings

    monkeypatch.chdir(tmp_path)
    assert Settings(data_dir="data").data_dir == tmp_path.resolve() / "data"


def test_wrong_method(client, alice):
    response = client.delete(f"{WES}/runs", headers=alice)
    assert response.status_code == 405
    assert response.json()["status_code"] == 405


def test_unexpected_failure_is_a_bare_500(client, alice, monkeypatch):
    def explode(*_args, **_kwargs):
        raise RuntimeError("secret internals /etc/shadow")

    monkeypatch.setattr(runs, "state_counts", explode)
    response = client.get(f"{WES}/service-info")
    assert response.status_code == 500
    assert response.json() == {"msg": "internal server error", "status_code": 500}
    assert "secret" not in response.text


def test_database_outage_is_a_503(client, alice, monkeypatch):
    def down(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(runs, "list_runs", down)
    response = client.get(f"{WES}/runs", headers=alice)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["status_code"] == 503


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_malformed_content_length(client, alice, length):
    response = client.post(f"{WES}/runs", headers={**alice, "Content-Length": length}, content=b"")
    assert response.status_code == 400


def test_health_and_docs_are_public(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get(f"{WES}/ui/")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
    spec = client.get(f"{WES}/openapi.json")
    assert spec.status_code == 200
    assert "/runs/{run_id}/tasks" in spec.json()["paths"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "where"),
    [
        ("post", "/api/trace/create", {"json": {"repository": "a\u0000b"}}, "body.repository"),
        (
            "post",
            "/api/workflow/launch",
            {
                "content": b'{"launch": {"pipeline": "x\\ud800"}}',
                "headers": {"Content-Type": "application/json"},
            },
            "body.launch.pipeline",
        ),
        ("post", f"{WES}/runs", {"data": {"workflow_params": '{"k": "\\u0000"}'}}, "params.k"),
        ("get", "/api/workflow?search=a%00b", {}, "NUL"),
        ("get", f"{WES}/runs/abc%00def", {}, "NUL"),
    ],
)
def test_text_no_database_stores_is_a_400(client, alice, method, path, kwargs, where):
    headers = {**alice, **kwargs.pop("headers", {})}
    response = getattr(client, method)(path, headers=headers, **kwargs)
    assert response.status_code == 400, response.text
    assert where in response.text


def test_a_connection_pool_that_stays_busy_is_a_503(client, alice, monkeypatch):
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from wes_gateway.domain import runs

    def busy(*_args, **_kwargs):
        raise PoolTimeout("QueuePool limit of size 10 overflow 20 reached")

    monkeypatch.setattr(runs, "list_runs", busy)
    response = client.get(f"{WES}/runs", headers=alice)
    assert response.status_code == 503
    assert response.json()["status_code"] == 503 and "database" in response.json()["msg"]
    assert response.headers["retry-after"] == "5"


def _json(text: str) -> dict:
    return {"content": text.encode(), "headers": {"Content-Type": "application/json"}}


_RUN = {"workflow_type": "NFL", "workflow_type_version": "DSL2", "workflow_url": "nf-core/demo"}
# Each kind of bad body (and bad parameter), sent to both APIs: (API, kind, method, path,
# request, the message's start: the field path, then ": ", then the problem).
BAD_REQUESTS = [
    (
        "wes",
        "schema type",
        "post",
        "/runs",
        {"json": {**_RUN, "workflow_type": 5}},
        "workflow_type: must be a string",
    ),
    (
        "tower",
        "schema type",
        "post",
        "/workflow/launch",
        {"json": {"launch": {"pipeline": "nf-core/demo", "paramsText": 5}}},
        "launch.paramsText: must be a string",
    ),
    (
        "wes",
        "schema type in a map",
        "post",
        "/runs",
        {"json": {**_RUN, "tags": {"a": 1}}},
        "tags.a: must be a string",
    ),
    (
        "tower",
        "schema type in a list",
        "post",
        "/workflow/delete",
        {"json": {"workflowIds": ["a", 1]}},
        "workflowIds[1]: must be a string",
    ),
    (
        "tower",
        "required field",
        "post",
        "/workflow/launch",
        {"json": {"launch": {}}},
        "launch.pipeline: required",
    ),
    ("tower", "required body field", "post", "/compute-envs", {"json": {}}, "computeEnv: required"),
    (
        "wes",
        "malformed JSON",
        "post",
        "/runs",
        _json("{"),
        "body: not valid JSON (Expecting property name enclosed in double quotes at line 1",
    ),
    ("tower", "empty body", "post", "/workflow/launch", _json(""), "body: required"),
    (
        "tower",
        "malformed JSON",
        "post",
        "/workflow/launch",
        _json("nope"),
        "body: not valid JSON (Expecting value at line 1 column 1)",
    ),
    ("wes", "not an object", "post", "/runs", _json("[1]"), "body: must be an object"),
    ("tower", "not an object", "post", "/workflow/launch", _json('"x"'), "body: must be an object"),
    ("wes", "null", "post", "/runs", _json("null"), "body: must not be null"),
    ("tower", "null", "post", "/workflow/launch", _json("null"), "body: must not be null"),
    (
        "wes",
        "not UTF-8",
        "post",
        "/runs",
        {"content": b'{"a": "\xff"}', "headers": {"Content-Type": "application/json"}},
        "body: not utf-8 text",
    ),
    (
        "tower",
        "not UTF-8",
        "post",
        "/workflow/launch",
        {"content": b'{"a": "\xff"}', "headers": {"Content-Type": "application/json"}},
        "body: not utf-8 text",
    ),
    (
        "wes",
        "form not UTF-8",
        "post",
        "/runs",
        {
            "content": b"workflow_url=%ff",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        "body: the form is not UTF-8 text",
    ),
    (
        "wes",
        "wrong Content-Type",
        "post",
        "/runs",
        {"content": b"x", "headers": {"Content-Type": "text/plain"}},
        "Content-Type: text/plain is not accepted here; send one of multipart/form-data, ",
    ),
    (
        "tower",
        "wrong Content-Type",
        "post",
        "/workflow/launch",
        {"content": b"{}", "headers": {"Content-Type": "text/plain"}},
        "Content-Type: text/plain is not accepted here; send application/json",
    ),
    (
        "tower",
        "no Content-Type",
        "post",
        "/workflow/launch",
        {"content": b"{}"},
        "Content-Type: missing; send application/json",
    ),
    ("wes", "query parameter", "get", "/runs?page_size=ten", {}, "page_size: must be an integer"),
    ("tower", "query parameter", "get", "/workflow?max=0", {}, "max: must be at least 1"),
    (
        "wes",
        "handler check",
        "post",
        "/runs",
        {"data": {**_RUN, "workflow_engine_parameters": '{"latest": "yes"}'}},
        "workflow_engine_parameters.latest: must be true or false",
    ),
]


@pytest.mark.parametrize(
    ("api", "kind", "method", "path", "request_", "expected"),
    BAD_REQUESTS,
    ids=[f"{api}-{kind}" for api, kind, *_ in BAD_REQUESTS],
)
def test_every_400_names_the_field_first(
    client, alice, api, kind, method, path, request_, expected
):
    """Connexion's body and parameter checks, the JSON and form parsers, the Content-Type
    check and the handlers all answer ``<field path>: <problem>``, in the API's shape."""
    base = WES if api == "wes" else "/api"
    request_ = dict(request_)
    headers = {**alice, **request_.pop("headers", {})}
    response = client.request(method.upper(), base + path, headers=headers, **request_)
    assert response.status_code == 400, (response.status_code, response.text)
    body = response.json()
    message = body["msg"] if api == "wes" else body["message"]
    assert set(body) == ({"msg", "status_code"} if api == "wes" else {"message"}), body
    assert message.startswith(expected), message
