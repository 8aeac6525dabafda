"""Decoding and validating a WES ``RunRequest``, from multipart form parts or from JSON.

``workflow_params``, ``tags`` and ``workflow_engine_parameters`` arrive as JSON text inside
form parts; they are decoded here, and every value is checked against what service-info
advertises. Every refusal is a 400 that names the part at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wes_gateway import nextflow, parsing, text
from wes_gateway.attachments import clean_name
from wes_gateway.errors import InvalidField

TEXT_FIELDS = (
    "workflow_type",
    "workflow_type_version",
    "workflow_url",
    "workflow_engine",
    "workflow_engine_version",
)
OBJECT_FIELDS = ("workflow_params", "tags", "workflow_engine_parameters")
ATTACHMENT_FIELD = "workflow_attachment"
KNOWN_FIELDS = frozenset(TEXT_FIELDS + OBJECT_FIELDS + (ATTACHMENT_FIELD,))


@dataclass(frozen=True)
class RunRequest:
    workflow_type: str
    workflow_type_version: str
    workflow_url: str
    workflow_params: dict[str, Any]
    tags: dict[str, str]
    workflow_engine_parameters: dict[str, str]
    workflow_engine: str | None = None
    workflow_engine_version: str | None = None
    attachments: list[str] = field(default_factory=list)

    @property
    def runs_attachment(self) -> bool:
        """True when ``workflow_url`` names an attached file rather than a pipeline."""
        return self.workflow_url in self.attachments

    def option(self, name: str) -> str | None:
        value = self.workflow_engine_parameters.get(name)
        return value or None

    def as_echo(self) -> dict[str, Any]:
        """The request as ``RunLog.request`` shows it back."""
        echo: dict[str, Any] = {
            "workflow_params": self.workflow_params,
            "workflow_type": self.workflow_type,
            "workflow_type_version": self.workflow_type_version,
            "tags": self.tags,
            "workflow_engine_parameters": self.workflow_engine_parameters,
            "workflow_url": self.workflow_url,
        }
        if self.workflow_engine:
            echo["workflow_engine"] = self.workflow_engine
        if self.workflow_engine_version:
            echo["workflow_engine_version"] = self.workflow_engine_version
        return echo


def parse_run_request(
    fields: Mapping[str, list[Any]],
    attachment_names: list[str],
    *,
    engine_versions: list[str],
    max_field_bytes: int,
) -> RunRequest:
    """Build a validated request from raw parts: each field maps to the values it was given
    (form parts may repeat); ``attachment_names`` are the already-cleaned file names. Every
    part, text or object, is held to ``max_field_bytes``, however it was encoded."""
    unknown = sorted(str(name) for name in set(fields) - KNOWN_FIELDS)
    if unknown:
        raise InvalidField(unknown[0], f"unknown part; expected some of {sorted(KNOWN_FIELDS)}")
    text = {name: _single_text(fields, name, max_field_bytes) for name in TEXT_FIELDS}
    objects = {name: _json_object(fields, name, max_field_bytes) for name in OBJECT_FIELDS}

    workflow_type = _check_type(text["workflow_type"])
    version = _check_type_version(text["workflow_type_version"])
    engine, engine_version = _check_engine(
        text["workflow_engine"], text["workflow_engine_version"], engine_versions
    )
    workflow_url = _check_url(text["workflow_url"], attachment_names)
    tags = {key: _as_text("tags", key, value) for key, value in objects["tags"].items()}
    options = _check_options(objects["workflow_engine_parameters"])
    if workflow_url in attachment_names and options.get("revision"):
        # Nextflow: "Revision option cannot be used when running a local script".
        raise InvalidField(
            "workflow_engine_parameters.revision",
            "cannot be used when workflow_url is an attached script (Nextflow runs a local "
            "script as it is; a revision names a commit of a git repository)",
        )
    return RunRequest(
        workflow_type=workflow_type,
        workflow_type_version=version,
        workflow_url=workflow_url,
        workflow_params=objects["workflow_params"],
        tags=tags,
        workflow_engine_parameters=options,
        workflow_engine=engine,
        workflow_engine_version=engine_version,
        attachments=attachment_names,
    )


def _single_text(fields: Mapping[str, list[Any]], name: str, max_bytes: int) -> str | None:
    values = fields.get(name) or []
    if len(values) > 1:
        raise InvalidField(name, "given more than once")
    if not values or values[0] is None:
        return None
    value = values[0]
    if not isinstance(value, str):
        raise InvalidField(name, "must be a string")
    parsing.check_text_size(name, value, max_bytes)
    if text.unstorable(value):
        raise InvalidField(name, text.PROBLEM)
    return value.strip()


def _json_object(fields: Mapping[str, list[Any]], name: str, max_bytes: int) -> dict[str, Any]:
    values = fields.get(name) or []
    if len(values) > 1:
        raise InvalidField(name, "given more than once")
    if not values or values[0] is None or values[0] == "":
        return {}
    value = values[0]
    sent_as_text = isinstance(value, str)
    if sent_as_text:
        parsing.check_text_size(name, value, max_bytes)
        value = parsing.load_json(name, value)
    if not isinstance(value, dict):
        raise InvalidField(name, "must be a JSON object")
    problem = text.shape_problem(value)
    if problem:
        raise InvalidField(name, problem)
    if not sent_as_text:  # an object of a JSON body, or parsed from a Tower launch's YAML
        parsing.check_value_size(name, value, max_bytes)
    where = text.unstorable(value, name)
    if where:
        raise InvalidField(where, text.PROBLEM)
    return value


def _as_text(field_name: str, key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise InvalidField(f"{field_name}.{key}", "must be a string")


def _check_type(value: str | None) -> str:
    if not value:
        raise InvalidField("workflow_type", "required; this service runs NFL (Nextflow)")
    normalised = nextflow.WORKFLOW_TYPE_ALIASES.get(value.upper())
    if normalised is None:
        raise InvalidField("workflow_type", f"{value!r} is not supported; use NFL")
    return normalised


def _check_type_version(value: str | None) -> str:
    supported = nextflow.WORKFLOW_TYPE_VERSIONS
    if not value:
        raise InvalidField("workflow_type_version", f"required; supported: {', '.join(supported)}")
    for candidate in supported:
        if value.upper() == candidate:
            return candidate
    raise InvalidField(
        "workflow_type_version", f"{value!r} is not supported; supported: {', '.join(supported)}"
    )


def _check_engine(
    engine: str | None, version: str | None, advertised: list[str]
) -> tuple[str | None, str | None]:
    if version and not engine:
        raise InvalidField("workflow_engine", "required when workflow_engine_version is given")
    if engine and engine.lower() != nextflow.ENGINE:
        raise InvalidField("workflow_engine", f"{engine!r} is not supported; use nextflow")
    if version and version not in advertised:
        raise InvalidField(
            "workflow_engine_version", f"{version!r} is not available; offered: {advertised}"
        )
    return (nextflow.ENGINE if engine else None), (version or None)


def _check_url(value: str | None, attachments: list[str]) -> str:
    if not value:
        raise InvalidField("workflow_url", "required: a pipeline or an attached file")
    if "://" not in value and not value.startswith("/"):
        try:
            as_path = clean_name(value)
        except InvalidField:
            as_path = None
        if as_path in attachments:
            return as_path
    if nextflow.is_git_url(value) or nextflow.is_pipeline_name(value):
        return value
    if attachments and "://" not in value:
        raise InvalidField("workflow_url", f"{value!r} is not among the attached files")
    raise InvalidField(
        "workflow_url",
        "must be an https git URL, an owner/repository pipeline name, or the relative path "
        "of an attached file",
    )


def _check_options(raw: dict[str, Any]) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, value in raw.items():
        field_name = f"workflow_engine_parameters.{name}"
        if name not in nextflow.LAUNCH_OPTION_NAMES:
            raise InvalidField(
                field_name, f"unknown option; known: {sorted(nextflow.LAUNCH_OPTION_NAMES)}"
            )
        text = _as_text("workflow_engine_parameters", name, value)
        options[name] = nextflow.check_launch_option(name, text, field_name)
    return options
