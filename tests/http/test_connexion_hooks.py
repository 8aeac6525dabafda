"""The places where the service reaches under Connexion's public API, checked so that a
Connexion upgrade that moves them fails here, loudly, rather than quietly turning a hook
off (pyproject.toml pins connexion below the next minor release for this reason).

Two kinds of checks: each private name and signature ``wes_gateway.validation`` and
``wes_gateway.trace_reports`` rely on exists with the shape they rely on; and, through
the app, each hook is in effect (it would be silently bypassed if Connexion stopped
calling it)."""

from __future__ import annotations

import inspect
import json

import pytest
from connexion.exceptions import BadRequestProblem
from connexion.middleware import MiddlewarePosition
from connexion.validators import (
    VALIDATOR_MAP,
    AbstractRequestBodyValidator,
    FormDataValidator,
    JSONRequestBodyValidator,
    MultiPartFormDataValidator,
    ParameterValidator,
)

from tests.conftest import WES, submit
from tests.domain.test_trace import API, run_token, sample
from wes_gateway.http import validation
from wes_gateway.http.tower import trace_reports

# -- the names and shapes the hooks rely on --------------------------------------------------


def _parameters(function) -> list[tuple[str, inspect._ParameterKind]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
KEYWORD = inspect.Parameter.KEYWORD_ONLY


@pytest.mark.backing_independent
def test_the_parameter_validator_has_the_shape_the_named_errors_rely_on():
    # NamedParameterValidator.validate_parameter replaces a static method, and calls it.
    assert isinstance(
        inspect.getattr_static(ParameterValidator, "validate_parameter"), staticmethod
    )
    assert [name for name, _ in _parameters(ParameterValidator.validate_parameter)] == [
        "parameter_type",
        "value",
        "param",
        "param_name",
    ]
    # NamedParameterValidator.validate wraps validate(scope) and reads self.parameters by
    # location to know a by-id operation.
    assert _parameters(ParameterValidator.validate) == [
        ("self", POSITIONAL),
        ("scope", POSITIONAL),
    ]
    spec = [{"name": "run_id", "in": "path", "schema": {"type": "string"}}]
    checker = validation.NamedParameterValidator(spec, uri_parser=None)
    assert checker.parameters["path"][0]["name"] == "run_id"
    from connexion.utils import is_null, is_nullable

    assert is_null("null") and is_nullable({"nullable": True})
    assert BadRequestProblem(detail="page_size: bad").detail == "page_size: bad"
    import connexion.context

    assert hasattr(connexion.context, "scope")  # where the deferred error is read back


@pytest.mark.backing_independent
def test_the_body_validators_have_the_shape_the_overrides_rely_on():
    # UnbufferedMultipart and TextJSONValidator override wrap_receive(receive, *, scope),
    # which returns (receive, scope).
    wrap = AbstractRequestBodyValidator.wrap_receive
    assert inspect.iscoroutinefunction(wrap)
    assert _parameters(wrap) == [("self", POSITIONAL), ("receive", POSITIONAL), ("scope", KEYWORD)]
    # TextJSONValidator and Utf8FormValidator override _parse(stream, scope), a coroutine
    # that Connexion's wrap_receive awaits.
    for parse in (JSONRequestBodyValidator._parse, FormDataValidator._parse):
        assert inspect.iscoroutinefunction(parse)
        assert [name for name, _ in _parameters(parse)] == ["self", "stream", "scope"]
    assert "self._parse(" in inspect.getsource(wrap)
    # TextJSONValidator caches what the _validator property builds from self._schema, and
    # decodes with self._encoding.
    assert isinstance(inspect.getattr_static(JSONRequestBodyValidator, "_validator"), property)
    schema = {"type": "object"}
    built = validation.TextJSONValidator(schema=schema, encoding="utf-8", strict_validation=False)
    assert built._schema is schema and built._encoding == "utf-8"
    assert built._validator is built._validator  # built once, by schema
    # The map our VALIDATORS extend: the body validators by media type.
    assert set(VALIDATOR_MAP) >= {"parameter", "body"}
    for media_type in ("*/*json", "application/x-www-form-urlencoded", "multipart/form-data"):
        assert media_type in VALIDATOR_MAP["body"]
        assert media_type in validation.VALIDATORS["body"]
    assert issubclass(validation.Utf8FormValidator, FormDataValidator)


@pytest.mark.backing_independent
def test_the_middleware_positions_and_scope_keys_exist():
    # TraceReportsMiddleware sits after routing, security and validation.
    for position in ("BEFORE_CONTEXT", "BEFORE_SWAGGER", "BEFORE_EXCEPTION"):
        assert hasattr(MiddlewarePosition, position)
    from connexion.middleware import context, routing

    # It reads these scope extensions (and the metrics read the routing one).
    assert routing.ROUTING_CONTEXT == "connexion_routing"
    assert '"operation_id"' in inspect.getsource(routing) and '"api_base_path"' in (
        inspect.getsource(routing)
    )
    assert '"connexion_context"' in inspect.getsource(context)


# -- each hook in effect, through the app ----------------------------------------------------


def test_parameter_errors_name_the_parameter(client, alice):
    response = client.get(f"{WES}/runs", params={"page_size": "many"}, headers=alice)
    assert response.status_code == 400
    assert response.json()["msg"].startswith("page_size: ")


def test_a_by_id_query_error_waits_for_the_run(client, alice, bob):
    run_id = submit(client, alice)
    mine = client.get(f"{WES}/runs/{run_id}/tasks", params={"page_size": "x"}, headers=alice)
    assert mine.status_code == 400 and mine.json()["msg"].startswith("page_size: ")
    # Another user's run, or none: the deferred error gives way to the 404.
    for headers, wanted in ((bob, run_id), (alice, "nosuchrun")):
        response = client.get(
            f"{WES}/runs/{wanted}/tasks", params={"page_size": "x"}, headers=headers
        )
        assert response.status_code == 404, response.text


def test_multipart_bodies_are_left_to_the_handler(client, alice, monkeypatch):
    parsed: list[object] = []
    real = MultiPartFormDataValidator._parse

    async def spy(self, stream, scope):
        parsed.append(self)
        return await real(self, stream, scope)

    monkeypatch.setattr(MultiPartFormDataValidator, "_parse", spy)
    submit(client, alice)  # a multipart POST /runs with an attachment
    bad = client.post(
        f"{WES}/runs",
        headers=alice,
        data={"workflow_type": "CWL"},
        files={"workflow_attachment": ("main.nf", b"x")},
    )
    assert bad.status_code == 400 and bad.json()["msg"].startswith("workflow_type")
    assert parsed == []  # Connexion never read them


def test_json_bodies_go_through_the_text_json_validator(client, alice):
    body = json.dumps({"launch": {"pipeline": "nf-core/demo"}}).encode()
    latin = client.post(
        "/api/workflow/launch",
        headers={**alice, "Content-Type": "application/json"},
        content=body.replace(b"nf-core", b"nf-c\xf6re"),
    )
    assert latin.status_code == 400 and "not utf-8 text" in latin.json()["message"]
    untyped = client.post("/api/workflow/launch", headers=alice, content=body)
    assert untyped.status_code == 400 and untyped.json()["message"].startswith(
        "Content-Type: missing"
    )
    nested = client.post(
        "/api/workflow/launch",
        headers={**alice, "Content-Type": "application/json"},
        content=b"[" * 5000 + b"]" * 5000,
    )
    assert nested.status_code == 400


def test_url_encoded_forms_go_through_the_utf8_form_validator(client, alice):
    fields = "workflow_type=NFL&workflow_type_version=DSL2&workflow_url=nf-core%2Fdemo"
    form = {**alice, "Content-Type": "application/x-www-form-urlencoded"}
    assert client.post(f"{WES}/runs", headers=form, content=fields).status_code == 200
    bad = client.post(f"{WES}/runs", headers=form, content=fields + "&tags=%FF")
    assert bad.status_code == 400 and bad.json()["msg"] == "body: the form is not UTF-8 text"


def test_trace_progress_is_served_from_the_asgi_stack(client, alice, db, monkeypatch):
    served: list[str] = []
    real = trace_reports.TraceReportsMiddleware._handle

    def spy(self, handler, claims, run_id, body, workspace_id):
        served.append(handler.__name__)
        return real(self, handler, claims, run_id, body, workspace_id)

    monkeypatch.setattr(trace_reports.TraceReportsMiddleware, "_handle", spy)
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
    client.put(f"{API}/{run_id}/begin", headers=headers, json=sample("02-begin", run_id))
    for kind in ("03-progress", "04-heartbeat"):
        path = kind.split("-")[1]
        response = client.put(f"{API}/{run_id}/{path}", headers=headers, json=sample(kind, run_id))
        assert response.status_code == 200, response.text
    assert served == ["trace_progress", "trace_heartbeat"]
    tasks = client.get(f"/api/workflow/{run_id}/tasks", headers=alice).json()["tasks"]
    assert len(tasks) == 2  # and what they carried was stored
    # Still checked by Connexion first: the auth and the body's schema.
    assert client.put(f"{API}/{run_id}/progress", json={"tasks": []}).status_code == 401
    wrong = client.put(f"{API}/{run_id}/progress", headers=headers, json=[1])
    assert wrong.status_code == 400
    assert served == ["trace_progress", "trace_heartbeat"]
