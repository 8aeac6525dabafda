"""Every operation of both OpenAPI files, read from the files themselves, so a test
generated from this list covers an endpoint as soon as a spec gains it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

SPECS = Path(__file__).resolve().parents[2] / "specs"
BASE_PATHS = {"wes.openapi.yaml": "/ga4gh/wes/v1", "tower.openapi.yaml": "/api"}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


# The integer ids the Tower paths name (tenancy, launchpad, secrets); a test that only
# needs some id in each fills them all with one value (``ids_of``).
TENANCY_IDS = (
    "orgId",
    "workspaceId",
    "memberId",
    "participantId",
    "userId",
    "teamId",
    "pipelineId",
    "labelId",
    "secretId",
)


def ids_of(value: int) -> dict[str, object]:
    """Every id of the paths: ``value`` for the integer ones, and names for the others."""
    return dict.fromkeys(TENANCY_IDS, value) | {"credentialsId": "0" * 22, "versionId": "v"}


@dataclass(frozen=True)
class Operation:
    spec: str
    method: str
    template: str  # as the spec writes it, under the API's base path
    operation_id: str
    public: bool  # the spec lifts authentication (``security: []``)
    body_types: tuple[str, ...]  # the request body's media types; () for none
    body_required: bool

    @property
    def base_path(self) -> str:
        return BASE_PATHS[self.spec]

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.base_path}{self.template} ({self.operation_id})"

    def url(self, values: Mapping[str, object]) -> str:
        """The operation's path, each ``{parameter}`` filled from ``values`` by name."""

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise LookupError(f"{self.label}: no value for the path parameter {{{name}}}")
            return quote(str(values[name]), safe="")

        return self.base_path + re.sub(r"\{([^}]+)\}", fill, self.template)


@cache
def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((SPECS / name).read_text())


def all_operations() -> list[Operation]:
    found = []
    for name in BASE_PATHS:
        spec = _load(name)
        default_security = spec.get("security") or []
        for template, item in spec["paths"].items():
            for method in METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                body = operation.get("requestBody") or {}
                found.append(
                    Operation(
                        spec=name,
                        method=method,
                        template=template,
                        operation_id=operation["operationId"],
                        public=operation.get("security", default_security) == [],
                        body_types=tuple(body.get("content", {})),
                        body_required=bool(body.get("required")),
                    )
                )
    return found
