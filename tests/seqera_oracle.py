"""Seqera's API (reference/seqera-api-1.181.0.yaml) as a test oracle: a response of ours
must validate against that file's schema for the same path, method and status."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator

SEQERA_SPEC = Path(__file__).resolve().parent / "oracle" / "seqera-api-1.181.0.yaml"


@functools.cache
def _document() -> dict[str, Any]:
    return yaml.safe_load(SEQERA_SPEC.read_text())


def check(path: str, method: str, status: int, body: Any) -> None:
    """Raise when ``body`` does not validate against Seqera's schema of that answer."""
    document = _document()
    answer = document["paths"][path][method.lower()]["responses"][str(status)]
    schema = answer["content"]["application/json"]["schema"]
    # The schema's $refs point into the file's components.
    OAS30Validator({**schema, "components": document["components"]}).validate(body)
