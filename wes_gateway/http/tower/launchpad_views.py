"""Response bodies of the launchpad and labels operations, in Seqera's shapes
(``PipelineDbDto``, ``LaunchDbDto``, ``LabelDbDto``): a field with no value is left
out, as Seqera's schemas allow no null in them."""

from __future__ import annotations

from typing import Any

from wes_gateway.domain import compute_envs, pipelines
from wes_gateway.domain.models import Label
from wes_gateway.http.tower.views import compute_env, tower_time


def _present(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


def label(row: Label) -> dict[str, Any]:
    return _present(
        {
            "id": row.id,
            "name": row.name,
            "value": row.value,
            "resource": bool(row.resource),
            "isDefault": bool(row.is_default),
            "isDynamic": False,
            "isInterpolated": False,
            "dateCreated": tower_time(row.created_at),
        }
    )


def label_answer(row: Label) -> dict[str, Any]:
    """Seqera's CreateLabelResponse and UpdateLabelResponse."""
    return _present(
        {
            "id": row.id,
            "name": row.name,
            "value": row.value,
            "resource": bool(row.resource),
            "isDefault": bool(row.is_default),
        }
    )


def labels_of(rows: list[Label]) -> list[dict[str, Any]]:
    return [label(row) for row in rows]


def pipeline(saved: pipelines.Saved, attributes: set[str] | frozenset = frozenset()):
    row = saved.pipeline
    env = saved.compute_env
    body: dict[str, Any] = {
        "pipelineId": row.id,
        "name": row.name,
        "description": row.description,
        "icon": row.icon,
        "repository": (row.launch or {}).get("pipeline"),
        "userId": row.owner_id,
        "userName": saved.user.name if saved.user else None,
        "orgId": saved.org.id if saved.org else None,
        "orgName": saved.org.name if saved.org else None,
        "workspaceId": saved.workspace.id if saved.workspace else None,
        "workspaceName": saved.workspace.name if saved.workspace else None,
        "visibility": "PRIVATE",
        "deleted": False,
        "lastUpdated": tower_time(row.updated_at),
        "version": {
            "id": pipelines.version_id(row),
            "name": "default",
            "isDefault": True,
            "dateCreated": tower_time(row.created_at),
            "lastUpdated": tower_time(row.updated_at),
        },
    }
    if "labels" in attributes:
        body["labels"] = labels_of(saved.labels)
    if "computeEnv" in attributes and env is not None:
        config = env.config or {}
        body["computeEnv"] = _present(
            {
                "id": env.id,
                "name": env.name,
                "platform": env.platform,
                "region": config.get("region") or config.get("location"),
            }
        )
    return _present(body)


def saved_launch(saved: pipelines.Saved, *, admin: bool) -> dict[str, Any]:
    """Seqera's LaunchDbDto of a pipeline: what ``POST /workflow/launch`` takes to
    start it. Its compute environment shows in full (execution settings to an
    ``admin`` only, as everywhere)."""
    row = saved.pipeline
    fields = row.launch or {}
    env = None
    if saved.compute_env is not None:
        env = compute_env(
            saved.compute_env,
            admin=admin,
            primary_id=saved.compute_env.id if saved.compute_env.primary else None,
        )
        env["config"] = compute_envs.shown(
            saved.compute_env.platform, saved.compute_env.config or {}, admin=admin
        )
    return _present(
        {
            "id": row.launch_id,
            "computeEnv": env,
            "pipeline": fields.get("pipeline"),
            "revision": fields.get("revision"),
            "workDir": fields.get("workDir"),
            "configProfiles": fields.get("configProfiles") or [],
            "configText": fields.get("configText"),
            "paramsText": fields.get("paramsText"),
            "preRunScript": fields.get("preRunScript"),
            "postRunScript": fields.get("postRunScript"),
            "mainScript": fields.get("mainScript"),
            "entryName": fields.get("entryName"),
            "pullLatest": bool(fields.get("pullLatest")),
            "stubRun": bool(fields.get("stubRun")),
            "resume": False,
            "headJobCpus": fields.get("headJobCpus"),
            "headJobMemoryMb": fields.get("headJobMemoryMb"),
            "runName": fields.get("runName"),
            "workspaceId": row.workspace_id,
            "dateCreated": tower_time(row.created_at),
            "lastUpdated": tower_time(row.updated_at),
        }
    )


def repository_info(info: pipelines.RepositoryInfo) -> dict[str, Any]:
    return {
        "pipelineInfo": _present(
            {
                "projectName": info.project_name,
                "simpleName": info.simple_name,
                "repositoryUrl": info.repository_url,
                "cloneUrl": info.clone_url,
                "provider": info.provider,
                "revisionName": info.revision,
                "revisions": [],
                "profiles": [],
                "configFiles": [],
                "workDirs": [],
                "warnings": [
                    "revisions, profiles and the manifest are read from the repository when "
                    "a run starts; this service does not read them beforehand"
                ],
            }
        )
    }
