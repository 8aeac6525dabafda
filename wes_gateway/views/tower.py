"""Tower API response bodies."""

from __future__ import annotations

from typing import Any


def watch_url(base_url: str, run_id: str) -> str:
    return f"{base_url}/api/workflow/{run_id}"


def trace_created(run_id: str, base_url: str) -> dict[str, Any]:
    return {"workflowId": run_id, "watchUrl": watch_url(base_url, run_id)}


def trace_begun(run_id: str, base_url: str) -> dict[str, Any]:
    return {"status": "OK", "workflowId": run_id, "watchUrl": watch_url(base_url, run_id)}


def trace_ok(run_id: str) -> dict[str, Any]:
    return {"status": "OK", "workflowId": run_id}


def heartbeat_ok() -> dict[str, Any]:
    return {"message": "OK"}
