"""Starting `wes-gateway serve` for a benchmark: a fresh data folder, a free port, and the
administrator token it prints on its first start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fresh_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="wes-gateway-bench-"))


@contextmanager
def running_gateway(folder: Path, **settings: str) -> Iterator[tuple[str, str]]:
    """Serve with ``settings`` (WES_GATEWAY_* names) on the data folder ``folder/data``;
    yields (base URL, admin token) and stops the server afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WES_GATEWAY_")}
    env.update(WES_GATEWAY_DATA_DIR=str(folder / "data"), **settings)
    port = _port()
    log = open(folder / "serve.log", "w+")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "wes_gateway", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"serve exited; see {folder / 'serve.log'}")
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        log.seek(0)
        token = next(line.strip() for line in log if line.startswith("    "))
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
