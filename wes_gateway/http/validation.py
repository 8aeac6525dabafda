"""How Connexion validates requests here: every error reads ``<field path>: <problem>``
(``max: must be an integer``, ``launch.paramsText: must be a string``, ``body: not valid
JSON (...)``, ``Content-Type: ...``), multipart bodies are left to RunWorkflow to read, and query
errors on by-id operations are held back so an unknown run answers 404 before its query
parameters are judged."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable, Iterable
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

from wes_gateway.domain import parsing, text
from wes_gateway.domain.errors import BadRequest

DEFERRED_QUERY_ERROR = "wes_gateway.deferred_query_error"
BODY = "body"  # how errors name a request body as a whole

_TYPE_NAMES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def field_path(root: str | None, path: Iterable[Any]) -> str:
    """``launch.configProfiles[0]``: the keys and indexes of ``path`` under ``root`` (a
    parameter's name), or from the top of the body when ``root`` is None."""
    out = root or ""
    for item in path:
        if isinstance(item, int):
            out = f"{out or BODY}[{item}]"
        else:
            out = f"{out}.{item}" if out else str(item)
    return out or BODY


def _problem(error: ValidationError) -> tuple[list[Any], str]:
    """The path (relative to the failing value) and the words for a schema error; never
    the value itself, which may be large or secret."""
    kind, rule, schema = error.validator, error.validator_value, error.schema
    if kind == "type":
        names = [
            _TYPE_NAMES.get(name, name) for name in ([rule] if isinstance(rule, str) else rule)
        ]
        return [], "must be " + " or ".join(names)
    if kind == "required" and isinstance(error.instance, dict):
        missing = next((name for name in rule if name not in error.instance), "")
        return [missing], "required"
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        known = set(schema.get("properties", {}))
        extra = sorted(str(name) for name in error.instance if name not in known)
        return extra[:1], "not a known field"
    words = {
        "enum": lambda: "must be one of " + ", ".join(json.dumps(value) for value in rule),
        "maxLength": lambda: f"must be at most {rule} characters",
        "minLength": lambda: f"must be at least {rule} characters",
        "maxItems": lambda: f"must hold at most {rule} items",
        "minItems": lambda: f"must hold at least {rule} items",
        "maximum": lambda: (
            ("must be less than " if schema.get("exclusiveMaximum") else "must be at most ")
            + str(rule)
        ),
        "minimum": lambda: (
            ("must be more than " if schema.get("exclusiveMinimum") else "must be at least ")
            + str(rule)
        ),
        "pattern": lambda: f"must match {rule}",
        "format": lambda: f"must be a valid {rule}",
    }.get(kind)
    return [], words() if words else f"does not satisfy the schema's {kind!r}"


def schema_error(error: ValidationError, root: str | None = None) -> str:
    """``<field path>: <problem>`` for a JSON Schema error of a body (``root`` None) or of
    the parameter named ``root``."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        # Name what is wrong inside the alternative the value has the type of (a tag's
        # value in an object of tags), rather than the alternatives as a whole.
        inside = [sub for sub in error.context if sub.relative_path]
        if inside:
            error = max(inside, key=lambda sub: len(sub.relative_path))
    extra, problem = _problem(error)
    return f"{field_path(root, [*error.absolute_path, *extra])}: {problem}"


class NamedParameterValidator(ParameterValidator):
    """Connexion's parameter checks, with short errors that name the parameter."""

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        if is_nullable(param) and is_null(value):
            return None
        if value is None:
            return f"{param['name']}: required" if param.get("required") else None
        try:
            Draft4Validator(param.get("schema", param)).validate(value)
        except ValidationError as exc:
            return schema_error(exc, param["name"])
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
    """Leaves multipart bodies unread for ``wes.run_submissions``, which reads them once,
    streaming files to disk under the service's limits, and checks every part itself
    (naming the part at fault). Connexion's own validator would hold the whole upload in
    memory twice."""

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
            raise BadRequestProblem(detail="Content-Type: missing; send application/json")
        missing = not int(headers.get("content-length") or 0)
        if missing and self._required and self._schema.get("default") is None:
            # Connexion reads a body without a length as none at all.
            raise BadRequestProblem(detail=f"{BODY}: required (a JSON body with a Content-Length)")
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
            raise BadRequestProblem(detail=f"{BODY}: not {self._encoding} text") from None
        if not decoded:
            # No body: the schema's default stands for it (an optional body has one).
            default = self._schema.get("default")
            return copy.deepcopy(default) if default is not None else None
        body = parsing.load_json(BODY, decoded)
        where = text.unstorable_json(raw, body)
        if where:
            raise BadRequestProblem(detail=f"{where}: {text.PROBLEM}")
        scope[PARSED_BODY] = body
        return body

    def _validate(self, body: Any) -> None:
        if body is None:
            raise BadRequestProblem(detail=f"{BODY}: must not be null")
        try:
            self._validator.validate(body)
        except ValidationError as exc:
            raise BadRequestProblem(detail=schema_error(exc)) from None


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
            raise BadRequestProblem(detail=f"{BODY}: the form is not UTF-8 text") from None
        return await super()._parse(replay(), scope)

    def _validate(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise BadRequestProblem(detail=f"{BODY}: must be a form of fields")
        try:
            self._validator.validate(body)
        except ValidationError as exc:
            raise BadRequestProblem(detail=schema_error(exc)) from None


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
