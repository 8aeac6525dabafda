"""GA4GH WES 1.1 handlers (operationIds of specs/wes.openapi.yaml, in snake case)."""

from __future__ import annotations

import json
from typing import Any

import flask

from wes_gateway.domain import (
    compute_envs,
    resume,
    ro_crate,
    run_outputs,
    runs,
    tenancy,
)
from wes_gateway.domain.errors import InvalidField
from wes_gateway.domain.launch import ATTACHMENT_FIELD, parse_run_request
from wes_gateway.http import dispatch
from wes_gateway.http.context import principal, public_base_url
from wes_gateway.http.runtime import current, request_session
from wes_gateway.http.validation import deferred_query_error
from wes_gateway.http.wes import run_submissions, views
from wes_gateway.infra.config import TOWER_BASE_PATH, WES_BASE_PATH


def _wes_url() -> str:
    return public_base_url() + WES_BASE_PATH


def get_service_info() -> dict[str, Any]:
    rt = current()
    settings = rt.settings
    return views.service_info(
        base_url=_wes_url(),
        engine_version=rt.engine_version.value,
        state_counts=rt.state_counts(),
        auth_instructions_url=settings.auth_instructions_url or public_base_url() + "/auth",
        organization_name=settings.organization_name,
        organization_url=settings.organization_url or public_base_url(),
        environment=settings.environment,
        trs_hosts=rt.trs.hosts,
    )


def list_runs(
    token_info: dict,
    page_size: int | None = None,
    page_token: str | None = None,
    workspace_id: int | None = None,
    state: list[str] | None = None,
    tag_key: list[str] | None = None,
    tag_value: list[str] | None = None,
    workflow_type: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    search: str | None = None,
):
    filters = runs.run_filter(
        state=state,
        tag_key=tag_key,
        tag_value=tag_value,
        workflow_type=workflow_type,
        created_after=created_after,
        created_before=created_before,
        search=search,
    )
    session = request_session()
    page = runs.list_runs(
        session,
        tenancy.acting(session, principal(token_info), workspace_id, "ListRuns"),
        page_size=page_size,
        page_token=page_token,
        signing_key=current().settings.signing_key,
        filters=filters,
    )
    return views.run_list(page)


def run_workflow(token_info: dict):
    """A JSON or URL-encoded submission (extensions); multipart ones, as the spec sends
    them, are answered before they get here (see run_submissions.py), by the same steps."""
    rt = current()
    fields = _read_submission(rt.settings.max_attachments, rt.settings.max_field_bytes)
    return views.run_id(run_submissions.accept(request_session(), rt, token_info, fields, []))


def resume_run(token_info: dict, run_id: str, body: dict | None = None):
    """A new run resuming ``run_id``'s session (an extension; see domain/resume.py)."""
    rt = current()
    session = request_session()
    old = resume.run_to_resume(session, _on_run(token_info, run_id, "ResumeRun"), run_id)
    # The body was checked against the spec; without one, nothing is overridden.
    overrides = (
        flask.request.get_json(force=True, silent=True) if flask.request.content_length else {}
    )
    if not isinstance(overrides, dict):
        raise InvalidField("body", "must be a JSON object")
    fields = resume.resume_fields(old, overrides, rt.settings.max_field_bytes)
    request = parse_run_request(
        fields,
        [],
        engine_versions=[rt.engine_version.value],
        max_field_bytes=rt.settings.max_field_bytes,
    )
    run = runs.create_run(
        session,
        tenancy.acting(session, principal(token_info), request.workspace_id, "RunWorkflow"),
        request,
        [],
        run_dir_of=rt.run_dir,
        run_name=request.option("run_name"),
        tower_url=rt.settings.public_url,
        trs_resolver=rt.trs,
        local_scripts=rt.settings.local_scripts,
    )
    dispatch.submit(rt.celery, run.id)
    return views.run_id(run.id)


def _read_submission(max_attachments: int, max_field_bytes: int) -> dict[str, list[Any]]:
    """The fields of a POST /runs body that is JSON or URL-encoded (neither carries
    files), or of none at all."""
    request = flask.request
    if request.mimetype == "application/json":
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise InvalidField("body", "must be a JSON object (a RunRequest)")
        if ATTACHMENT_FIELD in body:
            raise InvalidField(ATTACHMENT_FIELD, "send attachments as multipart/form-data parts")
        return {key: [value] for key, value in body.items()}
    if request.mimetype not in ("application/x-www-form-urlencoded", ""):
        raise InvalidField(
            "Content-Type",
            "must be multipart/form-data, application/json or application/x-www-form-urlencoded",
        )
    # The form was checked to be UTF-8 text when it was validated (validation.py).
    fields: dict[str, list[Any]] = {key: request.form.getlist(key) for key in request.form}
    run_submissions.check_text_sizes(fields, max_field_bytes)
    run_submissions.check_parts(fields, [], max_attachments)
    return fields


def _on_run(token_info: dict, run_id: str, operation: str):
    """The caller as it acts on the run, in the run's own workspace."""
    return tenancy.acting_on_run(request_session(), principal(token_info), run_id, operation)


def get_run_log(token_info: dict, run_id: str):
    run = runs.get_run(request_session(), _on_run(token_info, run_id, "GetRunLog"), run_id)
    return views.run_log(run, run_url=f"{_wes_url()}/runs/{run.id}")


def get_run_ro_crate(token_info: dict, run_id: str):
    """The run as a Workflow Run RO-Crate: a zip, or its metadata JSON-LD on ``Accept``."""
    rt = current()
    run = runs.get_run(request_session(), _on_run(token_info, run_id, "GetRunRoCrate"), run_id)
    crate = ro_crate.build(run, rt.run_dir(run.id), engine_version=rt.engine_version.value)
    accepted = flask.request.accept_mimetypes
    json_ld = accepted.best_match(["application/zip", "application/ld+json", "application/json"])
    if json_ld in ("application/ld+json", "application/json"):
        return flask.Response(
            json.dumps(ro_crate.metadata(crate), indent=2), mimetype="application/ld+json"
        )
    return flask.Response(
        ro_crate.zipped(crate),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{run.id}-ro-crate.zip"'},
    )


def get_run_output(token_info: dict, run_id: str, path: str):
    """One listed output file of a local run, streamed (see domain/run_outputs.py)."""
    rt = current()
    run = runs.get_run(request_session(), _on_run(token_info, run_id, "GetRunOutput"), run_id)
    wanted = run_outputs.checked_path(path)
    platform = run.compute_env.platform if run.compute_env else compute_envs.LOCAL
    folders = None
    if platform == compute_envs.LOCAL:
        folders = run_outputs.local_folders_of(run, rt.run_dir(run.id), rt.settings.data_dir)
    served = run_outputs.served_file(run, wanted, folders, platform)
    return flask.send_file(
        served,
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=served.name,
        conditional=False,
        etag=False,
    )


def get_run_status(token_info: dict, run_id: str):
    run = runs.get_run(request_session(), _on_run(token_info, run_id, "GetRunStatus"), run_id)
    return views.run_status(run)


def cancel_run(token_info: dict, run_id: str):
    run = runs.cancel_run(request_session(), _on_run(token_info, run_id, "CancelRun"), run_id)
    dispatch.cancel(current().celery, run)
    return views.run_id(run.id)


def list_tasks(
    token_info: dict, run_id: str, page_size: int | None = None, page_token: str | None = None
):
    who = _on_run(token_info, run_id, "ListTasks")
    if (problem := deferred_query_error()) is not None:
        runs.get_run(request_session(), who, run_id)
        raise problem
    page = runs.list_tasks(
        request_session(),
        who,
        run_id,
        page_size=page_size,
        page_token=page_token,
        signing_key=current().settings.signing_key,
    )
    return views.task_list(page, workflow_url=_workflow_url(run_id))


def get_task(token_info: dict, run_id: str, task_id: str):
    who = _on_run(token_info, run_id, "GetTask")
    task = runs.get_task(request_session(), who, run_id, task_id)
    return views.task_log(task, workflow_url=_workflow_url(run_id))


def _workflow_url(run_id: str) -> str:
    return f"{public_base_url()}{TOWER_BASE_PATH}/workflow/{run_id}"


def get_run_stdout(token_info: dict, run_id: str):
    return _log_text(_on_run(token_info, run_id, "GetRunStdout"), run_id, "stdout")


def get_run_stderr(token_info: dict, run_id: str):
    return _log_text(_on_run(token_info, run_id, "GetRunStderr"), run_id, "stderr")


def _log_text(who, run_id: str, stream: str):
    rt = current()
    run = runs.get_run(request_session(), who, run_id)
    if stream == "stdout":
        dispatch.refresh_log(rt.celery, run, rt.run_dir(run.id))
    text = runs.read_log_text(run.id, stream, rt.run_dir(run.id))
    return flask.Response(text, mimetype="text/plain")
