"""Resuming a run by its id (``POST /runs/{id}/resume``): a new run that resumes the old
one's Nextflow session, with the old run's request unless the body overrides fields.

The new run is an ordinary run request (``workflow_engine_parameters.resume`` set to the
old run's session), so it is validated, placed and executed as any resumed run: in the
session's folder, on the session's compute environment, refused while the session is in
use. Only a run that has ended can be resumed; a run that is still active, one that was
only monitored, or one whose pipeline was an attached script (its files are not kept for
a new run) is a 409.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from wes_gateway.domain import parsing, runs
from wes_gateway.domain.errors import BadRequest, Conflict, InvalidField
from wes_gateway.domain.launch import (
    ENGINE_PARAMETER_ALIASES,
    OBJECT_FIELDS,
    TEXT_FIELDS,
    is_git_url,
    is_pipeline_name,
)
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import is_terminal
from wes_gateway.domain.tokens import Principal

ENGINE_PARAMETERS = "workflow_engine_parameters"
# Options that name the old run's own launch, not what the new one runs.
_NOT_CARRIED = ("resume", "session_id", "run_name")


def run_to_resume(session: Session, principal: Principal, run_id: str) -> Run:
    """The run, if the caller may see it and it can be resumed (409 otherwise). A run's
    own token starts no run, a resumed one included."""
    if principal.run_id is not None:
        raise BadRequest("a run-scoped token cannot resume runs")
    run = runs.get_run(session, principal, run_id)
    if run.source == "trace":
        raise Conflict(f"run {run_id!r} was started outside the gateway; resume it where it ran")
    if not is_terminal(run.state):
        raise Conflict(
            f"run {run_id!r} is still {run.state.value}; it can be resumed once it has ended"
        )
    if not run.session_id:
        raise Conflict(f"run {run_id!r} has no Nextflow session to resume")
    if not (is_pipeline_name(run.pipeline or "") or is_git_url(run.pipeline or "")):
        raise Conflict(
            f"run {run_id!r} ran an attached script, whose files are not kept for a new run; "
            "submit it again with its attachments and workflow_engine_parameters.resume set "
            f"to {run.session_id}"
        )
    return run


def resume_fields(run: Run, overrides: dict[str, Any], max_field_bytes: int) -> dict[str, list]:
    """The raw fields of the new run's request: the old run's, each field the body gives
    replacing it (``workflow_engine_parameters`` merged key by key), the resume option set
    to the old run's session and its run name left for a new one."""
    known = set(TEXT_FIELDS + OBJECT_FIELDS)
    unknown = sorted(str(key) for key in overrides if key not in known)
    if unknown:
        raise InvalidField(unknown[0], f"not a field of a run request; one of {sorted(known)}")
    old = dict(run.request or {})
    fields: dict[str, Any] = {key: old[key] for key in known if key in old}
    options = {
        key: value
        for key, value in (old.get(ENGINE_PARAMETERS) or {}).items()
        if key not in _NOT_CARRIED
    }
    for key, value in overrides.items():
        if key == ENGINE_PARAMETERS:
            given = value
            if isinstance(given, str):
                parsing.check_text_size(key, given, max_field_bytes)
                given = parsing.load_json(key, given) if given else {}
            if not isinstance(given, dict):
                raise InvalidField(key, "must be a JSON object")
            for name in given:
                option = ENGINE_PARAMETER_ALIASES.get(name, name)
                if option in _NOT_CARRIED[:2]:
                    raise InvalidField(f"{key}.{name}", "set by the resume: the old session")
                options.pop(option, None)  # the body's name for it replaces the old one
            options.update(given)
        else:
            fields[key] = value
    options["resume"] = run.session_id
    named = {ENGINE_PARAMETER_ALIASES.get(name, name) for name in options}
    if run.compute_env_id and "compute_env_id" not in named:
        options["compute_env_id"] = run.compute_env_id
    fields[ENGINE_PARAMETERS] = options
    return {key: [value] for key, value in fields.items()}
