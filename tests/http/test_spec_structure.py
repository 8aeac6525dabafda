"""specs/wes.openapi.yaml is structurally the official WES 1.1 spec: the same paths,
operationIds, parameters, schema names and fields; what it adds is marked as ours."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from tests.oracle import OFFICIAL_SPEC

pytestmark = pytest.mark.backing_independent  # the spec files alone

OURS = Path(__file__).resolve().parent.parent.parent / "specs" / "wes.openapi.yaml"
EXTENSION = "x-wes-gateway-extension"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _resolve(node, root):
    """Inline every local $ref, dropping prose, so only structure is compared."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = root
            for key in node["$ref"].removeprefix("#/").split("/"):
                target = target[key]
            return _resolve(target, root)
        drop = {
            "description",
            "summary",
            "title",
            "example",
            "tags",
            "headers",
            "deprecated",
            "x-logo",
            "encoding",
        }
        return {key: _resolve(value, root) for key, value in node.items() if key not in drop}
    if isinstance(node, list):
        return [_resolve(item, root) for item in node]
    return node


official, ours = _load(OFFICIAL_SPEC), _load(OURS)


def test_our_spec_is_valid_openapi():
    validate(ours)


def test_same_paths_and_operations():
    for path, methods in official["paths"].items():
        assert path in ours["paths"], path
        for method, operation in methods.items():
            assert ours["paths"][path][method]["operationId"] == operation["operationId"]
    extra = set(ours["paths"]) - set(official["paths"])
    assert all(
        operation.get(EXTENSION) for path in extra for operation in ours["paths"][path].values()
    ), extra


@pytest.mark.parametrize(
    "path,method",
    [(path, method) for path, methods in official["paths"].items() for method in methods],
)
def test_same_parameters(path, method):
    theirs = _resolve(official["paths"][path][method].get("parameters", []), official)
    mine = _resolve(ours["paths"][path][method].get("parameters", []), ours)
    # Our additions are marked as extensions; the rest is the official list.
    assert [parameter for parameter in mine if not parameter.get(EXTENSION)] == theirs


@pytest.mark.parametrize(
    "path,method",
    [(path, method) for path, methods in official["paths"].items() for method in methods],
)
def test_same_responses_and_bodies(path, method):
    theirs = official["paths"][path][method]
    mine = ours["paths"][path][method]
    for status, response in theirs["responses"].items():
        assert _resolve(mine["responses"][str(status)], ours).get("content") == _resolve(
            response, official
        ).get("content"), status
    for status, response in mine["responses"].items():
        if int(status) not in theirs["responses"]:
            assert response.get(EXTENSION), status
    if "requestBody" in theirs:
        for media, content in theirs["requestBody"]["content"].items():
            assert _resolve(mine["requestBody"]["content"][media], ours) == _resolve(
                content, official
            )
        for media, content in mine["requestBody"]["content"].items():
            assert media in theirs["requestBody"]["content"] or content.get(EXTENSION)


def test_same_schemas_and_fields():
    theirs = official["components"]["schemas"]
    mine = ours["components"]["schemas"]
    assert set(theirs) == set(mine)
    for name in theirs:
        assert _resolve(mine[name], ours) == _resolve(theirs[name], official), name
