"""Every error is JSON in the API's shape, never a framework page or a stack trace."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from tests.conftest import WES
from wes_gateway import runs


def test_unknown_path_under_wes(client, alice):
    response = client.get(f"{WES}/nothing/here", headers=alice)
    assert response.status_code == 404
    assert response.json() == {"msg": f"no such path: GET {WES}/nothing/here", "status_code": 404}


@pytest.mark.parametrize("path", ["/api/workflow//download", f"{WES}/runs//status"])
def test_a_double_slash_is_not_found_not_redirected(client, alice, path):
    response = client.get(path, headers=alice)
    assert response.status_code == 404
    assert "no such path" in str(response.json())


def test_a_relative_data_folder_is_fixed_at_start(tmp_path, monkeypatch):
    from wes_gateway.config import Settings

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

    from wes_gateway import runs

    def busy(*_args, **_kwargs):
        raise PoolTimeout("QueuePool limit of size 10 overflow 20 reached")

    monkeypatch.setattr(runs, "list_runs", busy)
    response = client.get(f"{WES}/runs", headers=alice)
    assert response.status_code == 503
    assert response.json()["status_code"] == 503 and "database" in response.json()["msg"]
    assert response.headers["retry-after"] == "5"
