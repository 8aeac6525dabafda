"""The Seqera Platform API 1.181.0 (seqera-api-1.181.0.yaml, as published) as a test
oracle for the Tower operations this service shares with it: a response's body must
validate against the schema Seqera's spec gives for the same path, method and status."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SEQERA_SPEC = Path(__file__).resolve().parent / "seqera-api-1.181.0.yaml"
TOWER_PREFIX = "/api"
URI = "urn:seqera-api"


@cache
def seqera_spec() -> dict[str, Any]:
    return yaml.safe_load(SEQERA_SPEC.read_text())


@cache
def _registry() -> Registry:
    return Registry().with_resource(URI, Resource.from_contents(seqera_spec(), DRAFT4))


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    return [
        (re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"), template)
        for template in seqera_spec()["paths"]
    ]


def template_for(path: str) -> str | None:
    relative = path[len(TOWER_PREFIX) :] if path.startswith(TOWER_PREFIX + "/") else None
    if relative is None:
        return None
    # A literal path wins over a templated one (/orgs/{orgId}/members/add).
    matches = [template for pattern, template in _templates() if pattern.match(relative)]
    return min(matches, key=lambda template: template.count("{")) if matches else None


def response_schema(method: str, path: str, status: int) -> dict[str, Any] | None:
    template = template_for(path)
    if template is None:
        return None
    operation = seqera_spec()["paths"][template].get(method.lower())
    if operation is None:
        return None
    answer = operation["responses"].get(str(status))
    if answer is None:
        raise AssertionError(f"Seqera's {method} {template} has no {status} response")
    return (answer.get("content") or {}).get("application/json", {}).get("schema")


def validate(method: str, path: str, status: int, body: Any) -> None:
    """Assert ``body`` is what Seqera's spec allows for this answer."""
    schema = response_schema(method, path, status)
    if schema is None:
        return
    wrapped = {"$ref": URI + schema["$ref"]} if "$ref" in schema else schema
    validator = OAS30Validator(wrapped, registry=_registry())
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def check(response: httpx.Response) -> httpx.Response:
    """Validate a Tower response against Seqera's spec; returns it, for chaining."""
    response.read()
    body = response.json() if response.content else None
    if body is not None:
        validate(response.request.method, response.request.url.path, response.status_code, body)
    return response
