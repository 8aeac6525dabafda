"""The `-with-tower` side of the Nextflow stand-in: the trace calls Nextflow's nf-tower
plugin makes (create, begin, progress, heartbeat, complete), with its headers, its auth
rule and its payload shapes. Standard library only."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

NO_EXIT = 2147483647  # Nextflow's "no exit code yet"


class TowerError(Exception):
    """A failed call, with what Nextflow's client makes of it: the reason (its
    ``Response.message``), the status code (0: no connection) and the URL called."""

    def __init__(self, message: str, code: int | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.url = url


UNAUTHORIZED = (
    "Unauthorized Seqera Platform API access -- Make sure you have specified the correct "
    "access token"
)


def host_url(url: str) -> str:
    """``scheme://authority`` of a URL (TowerClient.getHostUrl)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def error_cause(body: str) -> str | None:
    """The ``message`` of a JSON error body, else the body itself (parseCause)."""
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    return parsed.get("message") if isinstance(parsed, dict) else body


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def auth_header(token: str) -> str:
    """Bearer for a JWT or a personal access token, Basic "@token:" for a legacy token."""
    if token.count(".") == 2:
        return f"Bearer {token}"
    try:
        head = base64.b64decode(token, validate=True).decode().split(".", 1)[0]
        json.loads(head)
        return f"Bearer {token}"
    except (ValueError, UnicodeDecodeError):
        return "Basic " + base64.b64encode(f"@token:{token}".encode()).decode()


class TowerClient:
    def __init__(self, endpoint: str, token: str, version: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self.version = version
        self.workspace = os.environ.get("TOWER_WORKSPACE_ID")
        self.workflow_id: str | None = None
        self.begun = False
        self.lock = threading.Lock()
        self.pending: dict[int, dict[str, Any]] = {}
        self.progress: dict[str, Any] = {}
        self.last_sent = time.monotonic()
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.alive_interval = float(os.environ.get("STANDIN_TOWER_ALIVE_INTERVAL", "60"))

    def _call(self, method: str, path: str, body: dict[str, Any], retries: int = 0) -> Any:
        url = self.endpoint + path
        if self.workspace:
            url += f"?workspaceId={self.workspace}"
        data = json.dumps(body).encode()
        request = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={
                "User-Agent": f"Nextflow/{self.version}",
                "Content-Type": "application/json; charset=utf-8",
                "Traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
                "Authorization": auth_header(self.token),
            },
        )
        for attempt in range(retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    text = response.read().decode()
                try:
                    return json.loads(text)
                except ValueError:
                    message = f"Invalid Seqera Platform API response: {text[:200]}"
                    raise TowerError(message) from None
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:200]
                if exc.code < 500 or attempt == retries:
                    reason = UNAUTHORIZED if exc.code == 401 else error_cause(detail)
                    reason = reason or f"Unexpected response for request {url}"
                    raise TowerError(reason, exc.code, url) from None
            except (urllib.error.URLError, OSError):
                if attempt == retries:
                    reason = f"Unable to connect to Seqera Platform API: {host_url(url)}"
                    raise TowerError(reason, 0, url) from None
            time.sleep(0.25 * 3**attempt)
        raise TowerError("unreachable")

    def create(self, session_id: str, run_name: str, project: str, repository: str | None):
        reply = self._call(
            "POST",
            "/trace/create",
            {
                "sessionId": session_id,
                "runName": run_name,
                "projectName": project,
                "repository": repository,
                "workflowId": os.environ.get("TOWER_WORKFLOW_ID") or None,
                "instant": int(time.time() * 1000),
            },
        )
        if not isinstance(reply, dict) or not reply.get("workflowId"):
            raise TowerError("Invalid Seqera Platform API response - Missing workflow Id")
        self.workflow_id = reply["workflowId"]
        if reply.get("message"):
            print(f"WARN: {reply['message']}", flush=True)
        return reply

    def begin(self, workflow: dict[str, Any], process_names: list[str]) -> dict[str, Any]:
        reply = self._call(
            "PUT",
            f"/trace/{self.workflow_id}/begin",
            {
                "workflow": workflow,
                "processNames": process_names,
                "towerLaunch": bool(os.environ.get("TOWER_WORKFLOW_ID")),
                "instant": int(time.time() * 1000),
            },
            retries=5,
        )
        self.begun = True
        self.thread = threading.Thread(target=self._send_loop, daemon=True)
        self.thread.start()
        return reply

    def task_event(self, record: dict[str, Any], progress: dict[str, Any]) -> None:
        with self.lock:
            self.pending[record["taskId"]] = dict(record)
            self.progress = progress

    def _send_loop(self) -> None:
        while not self.stop_event.wait(0.1):
            self.flush(force=False)

    def flush(self, force: bool) -> None:
        with self.lock:
            tasks = list(self.pending.values())
            progress = self.progress
            due = force or len(tasks) >= 100 or time.monotonic() - self.last_sent > 1
            idle = time.monotonic() - self.last_sent > self.alive_interval
            if tasks and due:
                self.pending.clear()
            elif not tasks and idle:
                tasks = None
            else:
                return
            self.last_sent = time.monotonic()
        try:
            if tasks is None:
                self._call(
                    "PUT",
                    f"/trace/{self.workflow_id}/heartbeat",
                    {"progress": progress, "instant": int(time.time() * 1000)},
                    retries=5,
                )
            else:
                for start in range(0, len(tasks), 100):
                    self._call(
                        "PUT",
                        f"/trace/{self.workflow_id}/progress",
                        {
                            "tasks": tasks[start : start + 100],
                            "progress": progress,
                            "containers": [],
                            "instant": int(time.time() * 1000),
                        },
                        retries=5,
                    )
        except TowerError as exc:  # before 26.04 a failed progress is only a warning
            print(f"WARN: Failed to send message to Seqera Platform: {exc}", flush=True)

    def complete(self, workflow: dict[str, Any], metrics: list[dict[str, Any]]) -> None:
        if not self.begun:
            return  # complete is sent only if begin was
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join()
        self.flush(force=True)
        self._call(
            "PUT",
            f"/trace/{self.workflow_id}/complete",
            {
                "workflow": workflow,
                "metrics": metrics,
                "progress": self.progress,
                "instant": int(time.time() * 1000),
            },
            retries=5,
        )
