"""A run as a Workflow Run RO-Crate (https://w3id.org/ro/wfrun/workflow/0.5): the
workflow run (its main entity), the engine and its version, the parameters, the inputs the
parameters name, the outputs, the start and end, the state and the person who ran it,
built with the ``rocrate`` library.

The crate describes the run; it does not copy the pipeline or the data: a pipeline from a
repository is named by its URL, an attached script is the one file the crate holds.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from rocrate.model import ContextEntity, Person, SoftwareApplication
from rocrate.rocrate import ROCrate

from wes_gateway.domain import run_files
from wes_gateway.domain.launch import is_git_url, is_pipeline_name
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import State

PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5": "Process Run Crate",
    "https://w3id.org/ro/wfrun/workflow/0.5": "Workflow Run Crate",
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": "Workflow RO-Crate",
}
# schema.org's ActionStatusType for a run's state.
_ACTION_STATUS = {
    State.COMPLETE: "http://schema.org/CompletedActionStatus",
    State.EXECUTOR_ERROR: "http://schema.org/FailedActionStatus",
    State.SYSTEM_ERROR: "http://schema.org/FailedActionStatus",
    State.CANCELED: "http://schema.org/FailedActionStatus",
    State.PREEMPTED: "http://schema.org/FailedActionStatus",
}


def _iso(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _pipeline_url(pipeline: str) -> str:
    return pipeline if is_git_url(pipeline) else f"https://github.com/{pipeline}"


def _remote_file(crate: ROCrate, url: str, name: str):
    """A file the crate names by its URL and does not hold (a data entity of the root)."""
    return crate.add_file(url, fetch_remote=False, validate_url=False, properties={"name": name})


def build(run: Run, run_dir: Path, *, engine_version: str) -> ROCrate:
    """The crate of ``run``; ``engine_version``: the Nextflow version it ran with when the
    run did not name one and its trace did not report one."""
    request = run.request or {}
    reported = ((run.workflow or {}).get("nextflow") or {}).get("version")
    version = request.get("workflow_engine_version") or reported or engine_version
    crate = ROCrate()
    crate.name = f"Run {run.id} of {run.pipeline}"
    pipeline = run.pipeline or ""
    if is_pipeline_name(pipeline) or is_git_url(pipeline):
        workflow = crate.add_workflow(
            _pipeline_url(pipeline), main=True, lang="nextflow", lang_version=version
        )
    else:
        script = run_files.launch_dir(run_dir) / pipeline
        workflow = crate.add_workflow(
            script if script.is_file() else None,
            dest_path=pipeline,
            main=True,
            lang="nextflow",
            lang_version=version,
        )
    workflow["name"] = run.project_name or pipeline
    if run.revision:
        workflow["version"] = run.revision
    engine = crate.add(
        SoftwareApplication(
            crate,
            "#nextflow",
            properties={"name": "Nextflow", "version": version, "url": "https://www.nextflow.io"},
        )
    )
    params = []
    inputs = []
    for name, value in sorted((run.params or {}).items()):
        text = value if isinstance(value, str) else json.dumps(value)
        params.append(
            crate.add(
                ContextEntity(
                    crate,
                    f"#param-{run.id}-{name}",
                    properties={"@type": "PropertyValue", "name": name, "value": text},
                )
            )
        )
        if isinstance(value, str) and "://" in value:
            inputs.append(_remote_file(crate, value, name))
    outputs = []
    for path, entry in sorted((run.outputs or {}).items()):
        if not isinstance(entry, dict) or not entry.get("location"):
            continue
        location = str(entry["location"])
        if location.startswith("/"):
            location = f"file://{location}"
        output = _remote_file(crate, location, path)
        if entry.get("size") is not None:
            output["contentSize"] = str(entry["size"])
        outputs.append(output)
    person = crate.add(Person(crate, f"#user-{run.user_name}", properties={"name": run.user_name}))
    properties: dict[str, Any] = {
        "name": f"Run {run.run_name or run.id} of {pipeline}",
        "startTime": _iso(run.start_time),
        "endTime": _iso(run.end_time),
        "agent": person,
        "description": f"WES state: {run.state.value}",
    }
    if run.state in _ACTION_STATUS:
        properties["actionStatus"] = {"@id": _ACTION_STATUS[run.state]}
    if run.error_message and run.state is not State.COMPLETE:
        properties["error"] = run.error_message
    action = crate.add_action(
        workflow,
        identifier=f"#run-{run.id}",
        object=params + inputs,
        result=outputs,
        properties={key: value for key, value in properties.items() if value is not None},
    )
    workflow["runtimePlatform"] = f"Nextflow {version}"
    crate.root_dataset["mentions"] = [action, engine]
    crate.root_dataset["conformsTo"] = [
        crate.add(ContextEntity(crate, uri, properties={"@type": "CreativeWork", "name": name}))
        for uri, name in PROFILES.items()
    ]
    return crate


def metadata(crate: ROCrate) -> dict[str, Any]:
    """The crate's ``ro-crate-metadata.json``."""
    return crate.metadata.generate()


def zipped(crate: ROCrate) -> bytes:
    """The crate as a zip file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "crate.zip"
        crate.write_zip(path)
        return path.read_bytes()
