"""Tower's launch request, turned into the run request a WES client would send, so a
launch goes through the very same validation, run row, command builder and workers."""

from __future__ import annotations

import json
import re
from typing import Any

from wes_gateway import nextflow, parsing
from wes_gateway.errors import FieldTooLarge, InvalidField
from wes_gateway.models import Run
from wes_gateway.views import tower as views
from wes_gateway.wes_request import RunRequest, parse_run_request

# WES field → the Tower launch field a client sent it as, for error messages.
_TOWER_NAMES = {
    "workflow_url": "pipeline",
    "workflow_params": "paramsText",
    "workflow_engine_parameters.revision": "revision",
    "workflow_engine_parameters.profile": "configProfiles",
    "workflow_engine_parameters.config": "configText",
    "workflow_engine_parameters.entry": "entryName",
    "workflow_engine_parameters.main_script": "mainScript",
    "workflow_engine_parameters.resume": "sessionId",
    "workflow_engine_parameters.latest": "pullLatest",
    "workflow_engine_parameters.compute_env_id": "computeEnvId",
}
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
_LOCAL_ONLY_REFUSED = ("preRunScript", "postRunScript")


def _params(text: Any, max_bytes: int) -> dict[str, Any]:
    field = "launch.paramsText"
    if text in (None, ""):
        return {}
    if not isinstance(text, str):
        raise InvalidField(field, "must be JSON or YAML text")
    value = parsing.load_yaml(field, text, max_bytes)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidField(field, "must hold an object of parameters")
    return value


def _flag(launch: dict[str, Any], name: str) -> bool:
    """A launch switch: a JSON boolean (or absent), as Seqera's launch request types it."""
    value = launch.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidField(f"launch.{name}", "must be true or false")
    return value


def _tower_field(field: str) -> str:
    """The launch field a WES field came from: ``workflow_params.a`` is
    ``launch.paramsText.a``."""
    for wes, tower in _TOWER_NAMES.items():
        if field == wes or field.startswith((f"{wes}.", f"{wes}[", f"{wes} ")):
            return f"launch.{tower}{field[len(wes) :]}"
    return f"launch.{field}"


def run_request(
    launch: dict[str, Any], *, engine_versions: list[str], max_field_bytes: int
) -> tuple[RunRequest, str | None]:
    """The run request for a Tower launch, and the run name it asks for (if any). Errors
    name the launch field (``launch.revision: ...``); ``paramsText`` is held to the field
    limit, as text and once parsed."""
    for field in _LOCAL_ONLY_REFUSED:
        if launch.get(field):
            raise InvalidField(
                f"launch.{field}", "scripts around the run are not allowed on this platform"
            )
    options: dict[str, Any] = {}
    if launch.get("revision"):
        options["revision"] = launch["revision"]
    profiles = launch.get("configProfiles")
    if profiles:
        if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
            raise InvalidField("launch.configProfiles", "must be a list of profile names")
        options["profile"] = ",".join(profiles)
    for field, option in (
        ("configText", "config"),
        ("entryName", "entry"),
        ("mainScript", "main_script"),
        ("computeEnvId", "compute_env_id"),
    ):
        if launch.get(field):
            options[option] = launch[field]
    if _flag(launch, "resume"):
        options["resume"] = launch.get("sessionId") or "true"
    if _flag(launch, "pullLatest"):
        options["latest"] = "true"
    run_name = launch.get("runName") or None
    if run_name is not None and not (isinstance(run_name, str) and _RUN_NAME.fullmatch(run_name)):
        raise InvalidField("launch.runName", "letters, digits, _ and - only, at most 80")
    fields = {
        "workflow_type": [nextflow.WORKFLOW_TYPE],
        "workflow_type_version": [nextflow.WORKFLOW_TYPE_VERSIONS[0]],
        "workflow_url": [launch.get("pipeline")],
        "workflow_params": [_params(launch.get("paramsText"), max_field_bytes)],
        "workflow_engine_parameters": [options],
    }
    try:
        request = parse_run_request(
            fields, [], engine_versions=engine_versions, max_field_bytes=max_field_bytes
        )
    except (InvalidField, FieldTooLarge) as exc:
        problem = exc.message.split(": ", 1)[-1]
        raise type(exc)(_tower_field(exc.field), problem) from None
    return request, run_name


def launch_record(run: Run, *, admin: bool) -> dict[str, Any]:
    """Tower's WorkflowLaunchResponse for a run: enough to relaunch or resume it. Its
    compute environment's execution settings show to an ``admin`` only."""
    options = (run.request or {}).get("workflow_engine_parameters", {})
    return {
        "id": run.id,
        "computeEnv": views.compute_env(run.compute_env, admin=admin) if run.compute_env else None,
        "pipeline": run.pipeline,
        "revision": run.revision,
        "commitId": run.commit_id,
        "workDir": run.work_dir,
        "sessionId": run.session_id,
        "configProfiles": run.profile.split(",") if run.profile else [],
        "configText": run.config_text,
        "paramsText": json.dumps(run.params or {}),
        "mainScript": options.get("main_script") or None,
        "entryName": options.get("entry") or None,
        "resume": options.get("resume") not in (None, "", "false"),
        "pullLatest": options.get("latest") == "true",
        "resumeDir": run.work_dir,
        "resumeCommitId": run.commit_id,
        "runName": run.run_name,
        "dateCreated": run.created_at.isoformat().replace("+00:00", "Z"),
    }
