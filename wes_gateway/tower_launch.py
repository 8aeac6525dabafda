"""Tower's launch request, turned into the run request a WES client would send, so a
launch goes through the very same validation, run row, command builder and workers."""

from __future__ import annotations

import json
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
    "workflow_engine_parameters.stub_run": "stubRun",
    "run_name": "runName",
    "workflow_engine_parameters.session_id": "sessionId",
    "workflow_engine_parameters.work_dir": "workDir",
    "workflow_engine_parameters.head_job_cpus": "headJobCpus",
    "workflow_engine_parameters.head_job_memory_mb": "headJobMemoryMb",
}
_LOCAL_ONLY_REFUSED = ("preRunScript", "postRunScript")
# Every field of Seqera's WorkflowLaunchRequest is read: these are run as asked (see
# run_request); ``id`` (the launch a relaunch starts from) and ``dateCreated`` (the
# client's clock) describe the request and change nothing about the run.
_HONOURED = frozenset(
    {
        "pipeline", "revision", "configProfiles", "configText", "paramsText", "entryName",
        "mainScript", "computeEnvId", "runName", "sessionId", "resume", "pullLatest",
        "stubRun", "workDir", "headJobCpus", "headJobMemoryMb", "id", "dateCreated",
        "preRunScript", "postRunScript",
    }
)  # fmt: skip
# Fields for features this service does not have: refused when set, never ignored.
_NOT_OFFERED = {
    "commitId": "give the commit as revision",
    "labelIds": "labels are not offered here",
    "launchContainer": "the head job image is the compute environment's headJobImage",
    "optimizationId": "resource optimization is not offered here",
    "optimizationTargets": "resource optimization is not offered here",
    "outputDir": "set the output directory with a pipeline parameter",
    "pipelineSchemaId": "pipeline schemas are not offered here",
    "schemaName": "pipeline schemas are not offered here",
    "syntaxParser": "set NXF_SYNTAX_PARSER on the compute environment",
    "towerConfig": "the trace settings are the gateway's own",
    "userSecrets": "pipeline secrets are not offered here",
    "workspaceSecrets": "pipeline secrets are not offered here",
}


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


def field_name(field: str) -> str:
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
    for field in launch:
        if field in _NOT_OFFERED and launch[field] not in (None, "", []):
            raise InvalidField(f"launch.{field}", f"not supported: {_NOT_OFFERED[field]}")
        if field not in _HONOURED and field not in _NOT_OFFERED:
            raise InvalidField(f"launch.{field}", "not a field of a launch request")
    for field in ("id", "dateCreated"):
        if launch.get(field) is not None and not isinstance(launch[field], str):
            raise InvalidField(f"launch.{field}", "must be a string")
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
        ("workDir", "work_dir"),
    ):
        if launch.get(field):
            options[option] = launch[field]
    for field, option in (
        ("headJobCpus", "head_job_cpus"),
        ("headJobMemoryMb", "head_job_memory_mb"),
    ):
        if launch.get(field) is not None:
            options[option] = launch[field]
    if _flag(launch, "resume"):
        options["resume"] = launch.get("sessionId") or "true"
    elif launch.get("sessionId"):
        options["session_id"] = launch["sessionId"]
    if _flag(launch, "pullLatest"):
        options["latest"] = "true"
    if _flag(launch, "stubRun"):
        options["stub_run"] = "true"
    run_name = launch.get("runName") or None
    if run_name is not None:
        if not isinstance(run_name, str):
            raise InvalidField("launch.runName", "must be a string")
        nextflow.check_run_name("launch.runName", run_name)
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
        raise type(exc)(field_name(exc.field), problem) from None
    return request, run_name


def launch_record(run: Run, *, admin: bool) -> dict[str, Any]:
    """Tower's WorkflowLaunchResponse for a run: every launch field as it was sent (or as
    a WES request carried it), enough to relaunch or resume it. Its compute environment's
    execution settings show to an ``admin`` only."""
    options = (run.request or {}).get("workflow_engine_parameters", {})
    resume = options.get("resume") not in (None, "", "false")
    profile = options.get("profile") or run.profile

    def integer(name: str) -> int | None:
        return int(options[name]) if options.get(name) else None

    return {
        "id": run.id,
        "computeEnv": views.compute_env(run.compute_env, admin=admin) if run.compute_env else None,
        "pipeline": run.pipeline,
        "revision": options.get("revision") or run.revision,
        "commitId": run.commit_id,
        "workDir": run.work_dir,
        "sessionId": run.session_id,
        "configProfiles": profile.split(",") if profile else [],
        "configText": options.get("config") or None,
        "paramsText": json.dumps(run.params or {}),
        "mainScript": options.get("main_script") or None,
        "entryName": options.get("entry") or None,
        "resume": resume,
        "pullLatest": options.get("latest") == "true",
        "stubRun": options.get("stub_run") == "true",
        "headJobCpus": integer("head_job_cpus"),
        "headJobMemoryMb": integer("head_job_memory_mb"),
        "resumeDir": run.work_dir,
        "resumeCommitId": run.commit_id,
        "runName": run.run_name,
        "dateCreated": run.created_at.isoformat().replace("+00:00", "Z"),
    }
