"""WES 1.1 response bodies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from wes_gateway import __version__
from wes_gateway.domain import compute_envs, launch
from wes_gateway.domain.models import Run, Task
from wes_gateway.domain.runs import Page
from wes_gateway.infra.config import TOWER_BASE_PATH

SERVICE_ID = "org.ga4gh.wes-gateway"


def wes_time(value: datetime | None) -> str | None:
    """ISO 8601 in the shape the spec documents: UTC, whole seconds, a literal Z."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


def service_info(
    *,
    base_url: str,
    engine_version: str,
    state_counts: Mapping[str, int],
    auth_instructions_url: str,
    organization_name: str,
    organization_url: str,
    environment: str | None,
    trs_hosts: list[str] | None = None,
) -> dict[str, Any]:
    """``trs_hosts``: the TRS registries a workflow_url may name (a tag, ``trs_hosts``)."""
    return _drop_none(
        {
            "id": SERVICE_ID,
            "name": "wes-gateway",
            "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
            "description": "Runs Nextflow pipelines through GA4GH WES 1.1 and a Tower-style API.",
            "organization": {"name": organization_name, "url": organization_url},
            "documentationUrl": f"{base_url}/ui/",
            "environment": environment,
            "version": __version__,
            "workflow_type_versions": {
                launch.WORKFLOW_TYPE: {"workflow_type_version": list(launch.WORKFLOW_TYPE_VERSIONS)}
            },
            "supported_wes_versions": ["1.1.0", "1.0.1", "1.0.0"],
            "supported_filesystem_protocols": list(launch.FILESYSTEM_PROTOCOLS),
            "workflow_engine_versions": {
                launch.ENGINE: {"workflow_engine_version": [engine_version]}
            },
            "default_workflow_engine_parameters": [
                {"name": option.name, "type": option.type, "default_value": option.default}
                for option in launch.LAUNCH_OPTIONS
            ],
            "system_state_counts": dict(state_counts),
            "auth_instructions_url": auth_instructions_url,
            "tags": {
                "tower_api": TOWER_BASE_PATH,
                "engine": launch.ENGINE,
                **engine_version_tags(engine_version),
                **({"trs_hosts": ",".join(trs_hosts)} if trs_hosts else {}),
            },
        }
    )


def engine_version_tags(installed: str) -> dict[str, str]:
    """What workflow_engine_version may name: the default (the installed Nextflow, on the
    local platform; the head image's on a cloud), the first version taken and the form."""
    cloud_default = compute_envs.DEFAULT_HEAD_IMAGE.rsplit(":", 1)[-1]
    return {
        "nextflow_version_default": installed,
        "nextflow_version_min": launch.MIN_ENGINE_VERSION,
        "nextflow_version_form": "YY.MM.P or YY.MM.P-edge (run with NXF_VER)",
        f"nextflow_version.{compute_envs.LOCAL}": installed,
        f"nextflow_version.{compute_envs.AWS_BATCH}": cloud_default,
        f"nextflow_version.{compute_envs.GOOGLE_BATCH}": cloud_default,
    }


def run_id(run_id: str) -> dict[str, Any]:
    return {"run_id": run_id}


def run_status(run: Run) -> dict[str, Any]:
    return {"run_id": run.id, "state": run.state.value}


def run_summary(row: Any) -> dict[str, Any]:
    """From a Run or a row of ``runs.SUMMARY_COLUMNS``."""
    return _drop_none(
        {
            "run_id": row.id,
            "state": row.state.value,
            "start_time": wes_time(row.start_time),
            "end_time": wes_time(row.end_time),
            "tags": dict(row.tags or {}),
        }
    )


def run_list(page: Page[Any]) -> dict[str, Any]:
    return {
        "runs": [run_summary(row) for row in page.items],
        "next_page_token": page.next_page_token,
    }


def run_log(run: Run, *, run_url: str) -> dict[str, Any]:
    """``run_url`` is the absolute URL of this run under the WES base path."""
    system_logs = [line for line in (run.error_message or "").splitlines() if line]
    log = _drop_none(
        {
            "name": run.run_name or run.pipeline,
            "cmd": list(run.command) if run.command else None,
            "start_time": wes_time(run.start_time),
            "end_time": wes_time(run.end_time),
            "stdout": f"{run_url}/stdout",
            "stderr": f"{run_url}/stderr",
            "exit_code": run.exit_status,
            "system_logs": system_logs,
        }
    )
    body = {
        "run_id": run.id,
        "request": dict(run.request),
        "state": run.state.value,
        "run_log": log,
        "task_logs_url": f"{run_url}/tasks",
        "task_logs": None,
        "outputs": dict(run.outputs or {}),
    }
    if run.workspace_id is not None:
        body["workspace_id"] = run.workspace_id
    if run.trs:
        # request.workflow_url stays the TRS workflow the client named; this is what ran.
        body["resolved_workflow"] = dict(run.trs)
    if run.outputs_truncated:
        body["outputs_truncated"] = True  # more files were published than outputs lists
    return body


def task_log(task: Task, *, workflow_url: str) -> dict[str, Any]:
    """``workflow_url``: the run's Tower URL, whose downloads serve the task's output."""
    data = task.data or {}
    system_logs = [
        f"{key}: {data[key]}" for key in ("errorAction", "nativeId", "workdir") if data.get(key)
    ]
    return _drop_none(
        {
            "id": str(task.task_id),
            "name": task.name or task.process or f"task {task.task_id}",
            "cmd": [data["script"]] if isinstance(data.get("script"), str) else None,
            "start_time": wes_time(task.start),
            "end_time": wes_time(task.complete),
            "exit_code": task.exit_status,
            "stdout": f"{workflow_url}/download/{task.task_id}?fileName=.command.out",
            "stderr": f"{workflow_url}/download/{task.task_id}?fileName=.command.err",
            "system_logs": system_logs,
        }
    )


def task_list(page: Page[Task], *, workflow_url: str) -> dict[str, Any]:
    return {
        "task_logs": [task_log(task, workflow_url=workflow_url) for task in page.items],
        "next_page_token": page.next_page_token,
    }
