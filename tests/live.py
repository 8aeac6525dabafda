"""Running the real command line: ``wes-gateway`` as a user would, in a child process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("wes-gateway")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "wes_gateway", *args]


def cli_env(data_dir: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WES_GATEWAY_")}
    env["WES_GATEWAY_DATA_DIR"] = str(data_dir)
    if database_url:
        env["WES_GATEWAY_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), env=env, capture_output=True, text=True, timeout=120)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve(env: dict[str, str], *, timeout: float = 60) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start ``wes-gateway serve`` on a free port; yields (base URL, process)."""
    port = free_port()
    log_path = Path(env["WES_GATEWAY_DATA_DIR"]).parent / f"serve-{port}.log"
    log = open(log_path, "w+")  # noqa: SIM115 - closed when the server stops
    process = subprocess.Popen(
        command("serve", "--port", str(port)),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"serve exited with {process.returncode}:\n{log.read()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("serve did not answer /healthz")
            time.sleep(0.1)
        process.output = log  # type: ignore[attr-defined]
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def output_of(process: subprocess.Popen) -> str:
    log = process.output  # type: ignore[attr-defined]
    log.flush()
    log.seek(0)
    return log.read()


def submit_over_http(base: str, headers: dict[str, str], pipeline: str = "nf-core/demo") -> str:
    """POST a run to a live server as a WES client would (multipart); returns its id."""
    response = httpx.post(
        f"{base}/ga4gh/wes/v1/runs",
        headers=headers,
        files={
            "workflow_type": (None, "NFL"),
            "workflow_type_version": (None, "DSL2"),
            "workflow_url": (None, pipeline),
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["run_id"]
