"""Tower handlers of labels: ``/labels`` and ``/workflow/labels/*`` (operationIds in
snake case)."""

from __future__ import annotations

from typing import Any

from connexion import NoContent

from wes_gateway.domain import labels, runs
from wes_gateway.http.runtime import request_session
from wes_gateway.http.tower import launchpad_views as views
from wes_gateway.http.tower.acting import acting


def list_labels(
    token_info: dict,
    workspace_id: int | None = None,
    max_: int | None = None,
    offset: int | None = None,
    search: str | None = None,
    type_: str | None = None,
    is_default: bool | None = None,
):
    found, total = labels.list_labels(
        request_session(),
        acting(token_info, workspace_id, "ListLabels"),
        max_=max_,
        offset=offset,
        search=search,
        type_=type_,
        is_default=is_default,
    )
    return {"labels": views.labels_of(found), "totalSize": total}


def create_label(body: dict[str, Any], token_info: dict, workspace_id: int | None = None):
    row = labels.create(request_session(), acting(token_info, workspace_id, "CreateLabel"), body)
    return views.label_answer(row)


def update_label(
    label_id: int, body: dict[str, Any], token_info: dict, workspace_id: int | None = None
):
    row = labels.update(
        request_session(), acting(token_info, workspace_id, "UpdateLabel"), label_id, body
    )
    return views.label_answer(row)


def delete_label(label_id: int, token_info: dict, workspace_id: int | None = None):
    labels.delete_label(
        request_session(), acting(token_info, workspace_id, "DeleteLabel"), label_id
    )
    return NoContent, 204


def _workflow_labels(mode: str, operation: str):
    def change(body: dict[str, Any], token_info: dict, workspace_id: int | None = None):
        who = acting(token_info, workspace_id, operation)
        labels.change_runs(
            request_session(), who, body, mode, lambda query: runs.visible(query, who)
        )
        return NoContent, 204

    change.__name__ = f"{mode}_labels_workflows"
    return change


add_labels_to_workflows = _workflow_labels("add", "AddLabelsToWorkflows")
apply_labels_to_workflows = _workflow_labels("apply", "ApplyLabelsToWorkflows")
remove_labels_from_workflows = _workflow_labels("remove", "RemoveLabelsFromWorkflows")
