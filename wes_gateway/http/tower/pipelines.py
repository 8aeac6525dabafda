"""Tower handlers of the launchpad: ``/pipelines`` (operationIds in snake case)."""

from __future__ import annotations

from typing import Any

from connexion import NoContent

from wes_gateway.domain import labels, pipelines
from wes_gateway.http.runtime import current, request_session
from wes_gateway.http.tower import launchpad_views as views
from wes_gateway.http.tower.acting import acting


def _limits() -> dict[str, Any]:
    rt = current()
    return {
        "engine_versions": [rt.engine_version.value],
        "max_field_bytes": rt.settings.max_field_bytes,
    }


def list_pipelines(
    token_info: dict,
    attributes: list[str] | None = None,
    workspace_id: int | None = None,
    max_: int | None = None,
    offset: int | None = None,
    sort_by: str | None = None,
    sort_dir: str | None = None,
    search: str | None = None,
    visibility: str | None = None,
):
    wanted = pipelines.check_attributes(attributes)
    found, total = pipelines.list_pipelines(
        request_session(),
        acting(token_info, workspace_id, "ListPipelines"),
        max_=max_,
        offset=offset,
        search=search,
        visibility=visibility,
        sort_by=sort_by,
        sort_dir=sort_dir,
    )
    return {"pipelines": [views.pipeline(saved, wanted) for saved in found], "totalSize": total}


def create_pipeline(body: dict[str, Any], token_info: dict, workspace_id: int | None = None):
    saved = pipelines.create(
        request_session(), acting(token_info, workspace_id, "CreatePipeline"), body, **_limits()
    )
    return {"pipeline": views.pipeline(saved, {"labels", "computeEnv"})}


def describe_pipeline(
    pipeline_id: int,
    token_info: dict,
    attributes: list[str] | None = None,
    workspace_id: int | None = None,
    source_workspace_id: int | None = None,
):
    wanted = pipelines.check_attributes(attributes)
    saved = pipelines.get(
        request_session(), acting(token_info, workspace_id, "DescribePipeline"), pipeline_id
    )
    return {"pipeline": views.pipeline(saved, wanted)}


def update_pipeline(
    pipeline_id: int, body: dict[str, Any], token_info: dict, workspace_id: int | None = None
):
    saved = pipelines.update(
        request_session(),
        acting(token_info, workspace_id, "UpdatePipeline"),
        pipeline_id,
        body,
        **_limits(),
    )
    return {"pipeline": views.pipeline(saved, {"labels", "computeEnv"})}


def update_pipeline_version(
    pipeline_id: int,
    version_id: str,
    body: dict[str, Any],
    token_info: dict,
    workspace_id: int | None = None,
):
    saved = pipelines.update_version(
        request_session(),
        acting(token_info, workspace_id, "UpdatePipelineVersion"),
        pipeline_id,
        version_id,
        body,
        **_limits(),
    )
    return {"pipeline": views.pipeline(saved, {"labels", "computeEnv"})}


def validate_pipeline_name(
    token_info: dict, workspace_id: int | None = None, org_id: int | None = None, name=None
):
    pipelines.check_name(
        request_session(), acting(token_info, workspace_id, "ValidatePipelineName"), name
    )
    return NoContent, 204


def delete_pipeline(pipeline_id: int, token_info: dict, workspace_id: int | None = None):
    pipelines.delete(
        request_session(), acting(token_info, workspace_id, "DeletePipeline"), pipeline_id
    )
    return NoContent, 204


def describe_pipeline_launch(
    pipeline_id: int,
    token_info: dict,
    workspace_id: int | None = None,
    source_workspace_id: int | None = None,
    version_id: str | None = None,
):
    who = acting(token_info, workspace_id, "DescribePipelineLaunch")
    saved = pipelines.saved_launch(request_session(), who, pipeline_id, version_id)
    return {"launch": views.saved_launch(saved, admin=who.acts_as_admin)}


def describe_pipeline_repository(
    token_info: dict,
    name: str | None = None,
    revision: str | None = None,
    workspace_id: int | None = None,
    main_script: str | None = None,
):
    who = acting(token_info, workspace_id, "DescribePipelineRepository")
    return views.repository_info(pipelines.repository_info(who, name, revision, main_script))


def _pipeline_labels(mode: str, operation: str):
    def change(body: dict[str, Any], token_info: dict, workspace_id: int | None = None):
        labels.change_pipelines(
            request_session(), acting(token_info, workspace_id, operation), body, mode
        )
        return NoContent, 204

    change.__name__ = f"{mode}_labels_pipelines"
    return change


add_labels_to_pipelines = _pipeline_labels("add", "AddLabelsToPipelines")
apply_labels_to_pipelines = _pipeline_labels("apply", "ApplyLabelsToPipelines")
remove_labels_from_pipelines = _pipeline_labels("remove", "RemoveLabelsFromPipelines")
