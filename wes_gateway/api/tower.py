"""Tower API handlers (operationIds of specs/tower.openapi.yaml, in snake case)."""

from __future__ import annotations

from typing import Any

from wes_gateway import trace
from wes_gateway.api import principal, public_base_url
from wes_gateway.runtime import request_session
from wes_gateway.views import tower as views


def create_trace(body: dict[str, Any], token_info: dict, workspace_id: int | None = None):
    run = trace.create(request_session(), principal(token_info), body)
    return views.trace_created(run.id, public_base_url())


def update_trace_begin(
    workflow_id: str, body: dict[str, Any], token_info: dict, workspace_id: int | None = None
):
    run = trace.begin(request_session(), principal(token_info), workflow_id, body)
    return views.trace_begun(run.id, public_base_url())


def update_trace_progress(
    workflow_id: str, body: dict[str, Any], token_info: dict, workspace_id: int | None = None
):
    run = trace.progress(request_session(), principal(token_info), workflow_id, body)
    return views.trace_ok(run.id)


def update_trace_heartbeat(
    workflow_id: str, body: dict[str, Any], token_info: dict, workspace_id: int | None = None
):
    trace.heartbeat(request_session(), principal(token_info), workflow_id, body)
    return views.heartbeat_ok()


def update_trace_complete(
    workflow_id: str, body: dict[str, Any], token_info: dict, workspace_id: int | None = None
):
    run = trace.complete(request_session(), principal(token_info), workflow_id, body)
    return views.trace_ok(run.id)
