"""How Connexion validates requests here: parameter errors that name the parameter,
multipart bodies left to the handler, and query errors on by-id operations held back so
an unknown run answers 404 before its query parameters are judged."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl

import connexion.context
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem
from connexion.utils import is_null, is_nullable
from connexion.validators import (
    VALIDATOR_MAP,
    AbstractRequestBodyValidator,
    FormDataValidator,
    JSONRequestBodyValidator,
    ParameterValidator,
)
from jsonschema import Draft4Validator, ValidationError
from starlette.datastructures import Headers

from wes_gateway import text
from wes_gateway.errors import BadRequest

DEFERRED_QUERY_ERROR = "wes_gateway.deferred_query_error"


class NamedParameterValidator(ParameterValidator):
    """Connexion's parameter checks, with short errors that name the parameter."""

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        if value is None or is_nullable(param) and is_null(value):
            return ParameterValidator.validate_parameter(parameter_type, value, param, param_name)
        try:
            Draft4Validator(param.get("schema", param)).validate(value)
        except ValidationError as exc:
            return f"{param['name']}: {exc.message}"
        return None

    def validate(self, scope):
        try:
            super().validate(scope)
        except BadRequestProblem as exc:
            if not any(param["name"] == "run_id" for param in self.parameters.get("path", [])):
                raise
            # The handler raises it once it knows the run exists and is the caller's; the
            # bad query is dropped so nothing downstream tries to convert it meanwhile.
            scope[DEFERRED_QUERY_ERROR] = exc.detail
            scope["query_string"] = b""


def deferred_query_error() -> BadRequest | None:
    """The query error held back for a by-id handler to raise once the run is found."""
    message = connexion.context.scope.get(DEFERRED_QUERY_ERROR)
    return BadRequest(message) if message else None


class UnbufferedMultipart(AbstractRequestBodyValidator):
    """Leaves multipart bodies to the handler, which parses them once, streaming files to
    disk under Werkzeug's limits, and validates every part itself (naming the part at
    fault). Connexion's own validator would hold the whole upload in memory twice."""

    async def wrap_receive(self, receive, *, scope):
        return receive, scope


async def _buffered(stream) -> tuple[bytes, Callable[[], AsyncIterator[bytes]]]:
    """A body read whole, and a way to hand the same bytes to Connexion's own parser."""
    chunks = [chunk async for chunk in stream]

    async def replay() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return b"".join(chunks), replay


PARSED_BODY = "wes_gateway.body"  # the scope key of a JSON body checked here


class TextJSONValidator(JSONRequestBodyValidator):
    """Connexion's JSON body check, with a body that is not text (or not said to be
    JSON), that nests too deeply, or that holds what no database stores, a 400 (not a
    500)."""

    async def wrap_receive(self, receive, *, scope):
        headers = Headers(scope=scope)
        sent = int(headers.get("content-length") or 0) or "transfer-encoding" in headers
        if sent and "content-type" not in headers:
            # Connexion would check it as JSON, then hand the handler the raw bytes.
            raise BadRequestProblem(detail="Content-Type is missing; send application/json")
        return await super().wrap_receive(receive, scope=scope)

    @property
    def _validator(self):
        """One validator per schema, built once (Connexion builds one per request)."""
        cached = _BODY_VALIDATORS.get(id(self._schema))
        if cached is None or cached[0] is not self._schema:
            cached = (self._schema, super()._validator)
            _BODY_VALIDATORS[id(self._schema)] = cached
        return cached[1]

    async def _parse(self, stream, scope):
        raw = b"".join([chunk async for chunk in stream])
        try:
            decoded = raw.decode(self._encoding)
        except (UnicodeDecodeError, LookupError):
            raise BadRequestProblem(detail=f"the body is not {self._encoding} text") from None
        if not decoded:
            return None
        try:
            body = json.loads(decoded)
        except json.JSONDecodeError as exc:
            raise BadRequestProblem(detail=str(exc)) from None
        except RecursionError:
            raise BadRequestProblem(detail=f"body: {text.TOO_DEEP}") from None
        except ValueError as exc:  # past the JSON syntax: e.g. a number of 5000 digits
            raise BadRequestProblem(detail=f"body: not valid JSON ({exc})") from None
        problem = text.shape_problem(body)
        if problem:
            raise BadRequestProblem(detail=f"body: {problem}")
        where = text.unstorable_json(raw, body)
        if where:
            raise BadRequestProblem(detail=f"{where}: {text.PROBLEM}")
        scope[PARSED_BODY] = body
        return body


# Body validators by schema (the spec's schema objects live as long as the app).
_BODY_VALIDATORS: dict[int, tuple[dict, Any]] = {}


class Utf8FormValidator(FormDataValidator):
    """Connexion's URL-encoded form check, with a form whose bytes (or %-escapes) are not
    UTF-8 a 400: the parsers after it would keep such escapes as they were written."""

    async def _parse(self, stream, scope):
        raw, replay = await _buffered(stream)
        try:
            parse_qsl(raw.decode(), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise BadRequestProblem(detail="the form is not UTF-8 text") from None
        return await super()._parse(replay(), scope)


VALIDATORS = {
    "parameter": NamedParameterValidator,
    "body": MediaTypeDict(
        {
            **VALIDATOR_MAP["body"],
            "*/*json": TextJSONValidator,
            "application/x-www-form-urlencoded": Utf8FormValidator,
            "multipart/form-data": UnbufferedMultipart,
        }
    ),
}
