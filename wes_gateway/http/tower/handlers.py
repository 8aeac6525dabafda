"""Tower API handlers (operationIds of specs/tower.openapi.yaml, in snake case)."""

from __future__ import annotations

from typing import Any

import flask
from connexion import NoContent

from wes_gateway import __version__
from wes_gateway.domain import (
    compute_envs,
    labels,
    launch,
    run_files,
    runs,
    task_loads,
    tenancy,
    tokens,
    trace,
)
from wes_gateway.domain.errors import NotFound
from wes_gateway.domain.states import is_terminal
from wes_gateway.http import dispatch
from wes_gateway.http.context import principal, public_base_url
from wes_gateway.http.runtime import current, request_session
from wes_gateway.http.tower import launchpad_views, views
from wes_gateway.http.tower.acting import acting
from wes_gateway.infra import metrics


def create_trace(body: dict[str, Any], token_info: dict, workspace_id: int | None = None):
    metrics.TRACE_CALLS.labels("create").inc()
    run = trace.create(request_session(), acting(token_info, workspace_id, "CreateTrace"), body)
    return views.trace_created(run.id, public_base_url())


def update_trace_begin(
    workflow_id: str, body: dict[str, Any], token_info: dict, workspace_id: int | None = None
):
    metrics.TRACE_CALLS.labels("begin").inc()
    run = trace.begin(
        request_session(), acting(token_info, workspace_id, "UpdateTraceBegin"), workflow_id, body
    )
    return views.trace_begun(run.id, public_base_url())


def trace_progress(
    session, claims: dict, workflow_id: str, body: dict[str, Any], workspace_id: int | None
) -> dict:
    metrics.TRACE_CALLS.labels("progress").inc()
    who = tenancy.acting(session, principal(claims), workspace_id, "UpdateTraceProgress")
    run_id = trace.progress(session, who, workflow_id, body)
    tasks = body.get("tasks")
    metrics.TRACE_TASK_RECORDS.inc(len(tasks) if isinstance(tasks, list) else 0)
    return views.trace_ok(run_id)


def trace_heartbeat(
    session, claims: dict, workflow_id: str, body: dict[str, Any], workspace_id: int | None
) -> dict:
    metrics.TRACE_CALLS.labels("heartbeat").inc()
    who = tenancy.acting(session, principal(claims), workspace_id, "UpdateTraceHeartbeat")
    trace.heartbeat(session, who, workflow_id, body)
    return views.heartbeat_ok()


# Served by wes_gateway.trace_reports once Connexion has checked them; these are what
# the spec's operationIds resolve to, and do the same.
def update_trace_progress(
    workflow_id: str, body: dict[str, Any], token_info: dict, workspace_id: int | None = None
):
    return trace_progress(request_session(), token_info, workflow_id, body, workspace_id)


def update_trace_heartbeat(
    workflow_id: str, body: dict[str, Any], token_info: dict, workspace_id: int | None = None
):
    return trace_heartbeat(request_session(), token_info, workflow_id, body, workspace_id)


def update_trace_complete(
    workflow_id: str, body: dict[str, Any], token_info: dict, workspace_id: int | None = None
):
    metrics.TRACE_CALLS.labels("complete").inc()
    run = trace.complete(
        request_session(),
        acting(token_info, workspace_id, "UpdateTraceComplete"),
        workflow_id,
        body,
    )
    return views.trace_ok(run.id)


def list_workflows(
    token_info: dict,
    workspace_id: int | None = None,
    max_: int | None = None,
    offset: int | None = None,
    search: str | None = None,
    attributes: list[str] | None = None,
    include_total_size: bool | None = None,
    cursor: str | None = None,
):
    session = request_session()
    page = runs.list_workflows(
        session,
        acting(token_info, workspace_id, "ListWorkflows"),
        max_=max_,
        offset=offset,
        search=search,
        include_total=bool(include_total_size),
        cursor=cursor,
        signing_key=current().settings.signing_key,
    )
    return views.workflow_list(
        page.runs,
        has_more=page.has_more,
        total=page.total,
        next_cursor=page.next_cursor,
        labels=_run_labels(session, [run.id for run in page.runs], attributes),
    )


def _run_labels(session, run_ids: list[str], attributes) -> dict[str, list] | None:
    """The runs' labels as Seqera's ``attributes=labels`` shows them; None unasked."""
    wanted = {part.strip() for item in attributes or [] for part in str(item).split(",")}
    if "labels" not in wanted:
        return None
    return {
        run_id: launchpad_views.labels_of(rows)
        for run_id, rows in labels.of_runs(session, run_ids).items()
    }


list_workflows_legacy = list_workflows


def describe_workflow(
    workflow_id: str, token_info: dict, workspace_id: int | None = None, attributes=None
):
    session = request_session()
    run = runs.get_run(session, acting(token_info, workspace_id, "DescribeWorkflow"), workflow_id)
    shown = _run_labels(session, [run.id], attributes)
    return views.describe(
        run,
        task_loads.read(session, run.id),
        labels=shown[run.id] if shown is not None else None,
    )


def describe_workflow_progress(workflow_id: str, token_info: dict, workspace_id=None):
    session = request_session()
    run = runs.get_run(
        session, acting(token_info, workspace_id, "DescribeWorkflowProgress"), workflow_id
    )
    return {"progress": views.progress(run, task_loads.read(session, run.id))}


def list_workflow_tasks(
    workflow_id: str,
    token_info: dict,
    workspace_id: int | None = None,
    max_: int | None = None,
    offset: int | None = None,
    sort_by: str | None = None,
    sort_dir: str | None = None,
    search: str | None = None,
):
    tasks, total = runs.list_workflow_tasks(
        request_session(),
        acting(token_info, workspace_id, "ListWorkflowTasks"),
        workflow_id,
        max_=max_,
        offset=offset,
        sort_by=sort_by,
        sort_dir=sort_dir,
        search=search,
    )
    return {"tasks": [{"task": views.task(task)} for task in tasks], "total": total}


def describe_workflow_task(
    workflow_id: str, task_id: int, token_info: dict, workspace_id: int | None = None
):
    task = runs.get_workflow_task(
        request_session(),
        acting(token_info, workspace_id, "DescribeWorkflowTask"),
        workflow_id,
        task_id,
    )
    return {"task": views.task(task)}


describe_workflow_task_legacy = describe_workflow_task


def cancel_workflow(
    workflow_id: str, token_info: dict, workspace_id=None, force: bool | None = None, body=None
):
    run = runs.cancel(
        request_session(), acting(token_info, workspace_id, "CancelWorkflow"), workflow_id
    )
    dispatch.cancel(current().celery, run)
    return NoContent, 204


def delete_workflow(workflow_id: str, token_info: dict, workspace_id=None, force=None):
    run = runs.delete_run(
        request_session(),
        acting(token_info, workspace_id, "DeleteWorkflow"),
        workflow_id,
        force=bool(force),
    )
    dispatch.deleted(current().celery, run)
    return NoContent, 204


def delete_workflow_many(body: dict[str, Any], token_info: dict, workspace_id=None, force=None):
    failed, deleted = runs.delete_many(
        request_session(),
        acting(token_info, workspace_id, "DeleteWorkflowMany"),
        body["workflowIds"],
        force=bool(force),
    )
    for run in deleted:
        dispatch.deleted(current().celery, run)
    return {"failedWorkflowIds": failed}


def describe_workflow_metrics(workflow_id: str, token_info: dict, workspace_id=None):
    session = request_session()
    run = runs.get_run(
        session, acting(token_info, workspace_id, "DescribeWorkflowMetrics"), workflow_id
    )
    return views.metrics(run, [] if run.metrics else runs.tasks_for_progress(session, run.id))


def get_workflow_log(
    workflow_id: str, token_info: dict, workspace_id=None, next_=None, max_length=None
):
    rt = current()
    run = runs.get_run(
        request_session(), acting(token_info, workspace_id, "GetWorkflowLog"), workflow_id
    )
    dispatch.refresh_log(rt.celery, run, rt.run_dir(run.id))
    path = run_files.run_file(rt.run_dir(run.id), run.id, run_files.console_name(run.id))
    # Without `next`, the console from its first line as one growing list (up to the
    # largest page): `nextflow launch` prints the entries past the count it has shown.
    if next_ is None:
        page = run_files.read_page(path, None, max_length or run_files.MAX_PAGE_BYTES)
    else:
        page = run_files.read_page(path, next_, max_length)
    downloads = [
        {"fileName": name, "displayText": text, "saveName": name}
        for name, text in run_files.run_downloads(run.id).items()
    ]
    message = (
        f"More follows: read on from forwardToken, or download {run_files.console_name(run.id)}"
        if page.truncated
        else None
    )
    return views.log_page(
        page, pending=not is_terminal(run.state), downloads=downloads, message=message
    )


def get_workflow_task_log(
    workflow_id: str,
    task_id: int,
    token_info: dict,
    workspace_id=None,
    next_=None,
    max_length=None,
):
    rt = current()
    session = request_session()
    task = runs.get_workflow_task(
        session, acting(token_info, workspace_id, "GetWorkflowTaskLog"), workflow_id, task_id
    )
    path = run_files.task_file(rt.run_dir(workflow_id), task, ".command.out")
    page = run_files.read_page(path, next_, max_length)
    downloads = [
        {"fileName": name, "displayText": text, "saveName": f"task-{task_id}{name}.txt"}
        for name, text in run_files.TASK_FILES.items()
    ]
    return views.log_page(
        page, pending=task.status in (None, "NEW", "SUBMITTED", "RUNNING"), downloads=downloads
    )


def download_workflow_log(workflow_id: str, token_info: dict, workspace_id=None, file_name=None):
    rt = current()
    run = runs.get_run(
        request_session(), acting(token_info, workspace_id, "DownloadWorkflowLog"), workflow_id
    )
    name = file_name or run_files.console_name(run.id)
    path = run_files.run_file(rt.run_dir(run.id), run.id, name)
    if path == run_files.console_file(rt.run_dir(run.id), run.id):
        dispatch.refresh_log(rt.celery, run, rt.run_dir(run.id))
    return _file_response(path, name)


def download_workflow_task_log(
    workflow_id: str, task_id: int, token_info: dict, workspace_id=None, file_name=None
):
    task = runs.get_workflow_task(
        request_session(),
        acting(token_info, workspace_id, "DownloadWorkflowTaskLog"),
        workflow_id,
        task_id,
    )
    name = file_name or ".command.out"
    return _file_response(run_files.task_file(current().run_dir(workflow_id), task, name), name)


def _file_response(path, name: str):
    if not path.is_file():
        raise NotFound(f"{name} does not exist (yet)")
    return flask.send_file(path, mimetype="text/plain", as_attachment=True, download_name=name)


def local_work_dir() -> str:
    """The work dir the local compute environment shows: the folder its runs' own work
    folders are in (see placement.plan)."""
    return str(current().settings.runs_dir.resolve())


def describe_workflow_launch(workflow_id: str, token_info: dict, workspace_id=None):
    who = acting(token_info, workspace_id, "DescribeWorkflowLaunch")
    session = request_session()
    run = runs.get_run(session, who, workflow_id)
    env = compute_envs.of_run(session, run)
    record = views.launch_record(run, env, admin=who.acts_as_admin, local_work_dir=local_work_dir())
    return {"launch": record}


def create_workflow_launch(body: dict, token_info: dict, workspace_id=None):
    rt = current()
    session = request_session()
    request, run_name = launch.run_request(
        body.get("launch") or {},
        engine_versions=[rt.engine_version.value],
        max_field_bytes=rt.settings.max_field_bytes,
    )
    who = acting(token_info, workspace_id, "CreateWorkflowLaunch")
    tags = labels.resolve(
        session, who, (body.get("launch") or {}).get("labelIds"), "launch.labelIds"
    )
    run = runs.create_run(
        session,
        who,
        request,
        [],
        run_dir_of=rt.run_dir,
        source="tower",
        run_name=run_name,
        compute_env_field="launch.computeEnvId",
        field_name=launch.field_name,
        tower_url=rt.settings.public_url,
        local_scripts=rt.settings.local_scripts,
        trs_resolver=rt.trs,
    )
    labels.add_to_run(session, run.id, tags)
    dispatch.submit(rt.celery, run.id)
    return {"workflowId": run.id}


def list_compute_envs(token_info: dict, workspace_id=None, status=None, attributes=None):
    who = acting(token_info, workspace_id, "ListComputeEnvs")
    session = request_session()
    envs = compute_envs.list_envs(session, who, status)
    primary = compute_envs.primary_of(session, who.workspace_id)
    work_dir = local_work_dir()
    return {"computeEnvs": [views.compute_env_entry(env, primary, work_dir) for env in envs]}


def create_compute_env(body: dict[str, Any], token_info: dict, workspace_id=None):
    env = compute_envs.create(
        request_session(), acting(token_info, workspace_id, "CreateComputeEnv"), body
    )
    if env.status == "CREATING":
        dispatch.check_compute_env(current().celery, env.id)
    return {"computeEnvId": env.id}


def describe_compute_env(compute_env_id: str, token_info: dict, workspace_id=None, attributes=None):
    who = acting(token_info, workspace_id, "DescribeComputeEnv")
    session = request_session()
    env = compute_envs.get(session, compute_env_id, who)
    primary = compute_envs.primary_of(session, who.workspace_id)
    return {
        "computeEnv": views.compute_env(
            env, admin=who.acts_as_admin, primary_id=primary, local_work_dir=local_work_dir()
        )
    }


def delete_compute_env(compute_env_id: str, token_info: dict, workspace_id=None, force=None):
    compute_envs.delete(
        request_session(), acting(token_info, workspace_id, "DeleteComputeEnv"), compute_env_id
    )
    return NoContent, 204


def update_compute_env_primary(compute_env_id: str, token_info: dict, workspace_id=None, body=None):
    compute_envs.make_primary(
        request_session(),
        acting(token_info, workspace_id, "UpdateComputeEnvPrimary"),
        compute_env_id,
    )
    return NoContent, 204


def token_list(token_info: dict):
    rows = tokens.list_tokens(request_session(), principal(token_info))
    return {"tokens": [views.access_token(row) for row in rows]}


def create_token(body: dict[str, Any], token_info: dict):
    session, who = request_session(), principal(token_info)
    workspace_id = tenancy.token_workspace(session, who, body.get("workspaceId"))
    row, secret = tokens.create_personal_token(
        session, who, body.get("name"), body.get("scope"), workspace_id, body.get("expiresInDays")
    )
    return {"accessKey": secret, "token": views.access_token(row)}


def delete_token(token_id: str, token_info: dict):
    tokens.delete_personal_token(request_session(), principal(token_info), int(token_id))
    return NoContent, 204


def delete_all_tokens(token_info: dict):
    tokens.delete_all_personal_tokens(request_session(), principal(token_info))
    return NoContent, 204


def user_info(token_info: dict):
    who = principal(token_info)
    return views.user_info(who.user_id, who.user_name, who.acts_as_admin)


# --- tenancy -----------------------------------------------------------------------


def info():
    return views.service_info(__version__)


def list_workspaces_user(user_id: int, token_info: dict):
    entries = tenancy.places(request_session(), principal(token_info), user_id)
    return {"orgsAndWorkspaces": [views.place(entry) for entry in entries]}


def list_organizations(token_info: dict, role: str | None = None):
    rows = tenancy.list_organizations(request_session(), principal(token_info), role)
    return {
        "organizations": [views.organization(org, member) for org, member in rows],
        "totalSize": len(rows),
    }


def create_organization(body: dict[str, Any], token_info: dict):
    org, member = tenancy.create_organization(request_session(), principal(token_info), body)
    return {"organization": views.organization(org, member)}


def describe_organization(org_id: int, token_info: dict):
    org, member = tenancy.organization(request_session(), principal(token_info), org_id)
    return {"organization": views.organization(org, member)}


def update_organization(org_id: int, body: dict[str, Any], token_info: dict):
    tenancy.update_organization(request_session(), principal(token_info), org_id, body)
    return NoContent, 204


def delete_organization(org_id: int, token_info: dict):
    tenancy.delete_organization(request_session(), principal(token_info), org_id)
    return NoContent, 204


def list_organization_members(org_id: int, token_info: dict, max_=None, offset=None, search=None):
    rows, total = tenancy.list_members(
        request_session(), principal(token_info), org_id, max_=max_, offset=offset, search=search
    )
    return {"members": [views.member(row, user) for row, user in rows], "totalSize": total}


def create_organization_member(org_id: int, body: dict[str, Any], token_info: dict):
    row, user = tenancy.add_member(request_session(), principal(token_info), org_id, body)
    return {"member": views.member(row, user)}


def delete_organization_member(org_id: int, member_id: int, token_info: dict):
    tenancy.delete_member(request_session(), principal(token_info), org_id, member_id)
    return NoContent, 204


def update_organization_member_role(
    org_id: int, member_id: int, body: dict[str, Any], token_info: dict
):
    tenancy.update_member_role(request_session(), principal(token_info), org_id, member_id, body)
    return NoContent, 204


def list_workspaces(org_id: int, token_info: dict):
    found = tenancy.list_workspaces(request_session(), principal(token_info), org_id)
    return {"workspaces": [views.workspace_entry(ws) for ws in found]}


def create_workspace(org_id: int, body: dict[str, Any], token_info: dict):
    ws = tenancy.create_workspace(request_session(), principal(token_info), org_id, body)
    return {"workspace": views.workspace(ws)}


def describe_workspace(org_id: int, workspace_id: int, token_info: dict):
    ws, _ = tenancy.workspace(
        request_session(), principal(token_info), org_id, workspace_id, "DescribeWorkspace"
    )
    return {"workspace": views.workspace(ws)}


def update_workspace(org_id: int, workspace_id: int, body: dict[str, Any], token_info: dict):
    ws = tenancy.update_workspace(
        request_session(), principal(token_info), org_id, workspace_id, body
    )
    return {"workspace": views.workspace(ws)}


def delete_workspace(org_id: int, workspace_id: int, token_info: dict):
    tenancy.delete_workspace(request_session(), principal(token_info), org_id, workspace_id)
    return NoContent, 204


def list_workspace_participants(
    org_id: int, workspace_id: int, token_info: dict, max_=None, offset=None, search=None
):
    found, total = tenancy.list_participants(
        request_session(),
        principal(token_info),
        org_id,
        workspace_id,
        max_=max_,
        offset=offset,
        search=search,
    )
    return {"participants": [views.participant(view) for view in found], "totalSize": total}


def create_workspace_participant(
    org_id: int, workspace_id: int, body: dict[str, Any], token_info: dict
):
    view = tenancy.add_participant(
        request_session(), principal(token_info), org_id, workspace_id, body
    )
    return {"participant": views.participant(view)}


def delete_workspace_participant(
    org_id: int, workspace_id: int, participant_id: int, token_info: dict
):
    tenancy.delete_participant(
        request_session(), principal(token_info), org_id, workspace_id, participant_id
    )
    return NoContent, 204


def update_workspace_participant_role(
    org_id: int, workspace_id: int, participant_id: int, body: dict[str, Any], token_info: dict
):
    tenancy.update_participant_role(
        request_session(), principal(token_info), org_id, workspace_id, participant_id, body
    )
    return NoContent, 204
