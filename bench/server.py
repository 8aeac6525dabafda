"""Starting `wes-gateway serve` for a benchmark: a scratch data folder, a free port, and the
administrator token it prints on its first start."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "tests" / "standin" / "nextflow"
WES = "/ga4gh/wes/v1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wes-gateway-bench"

# The interpreter that serves: this one, or a user's install made by product_install().
server_python = sys.executable


def product_install() -> str:
    """A virtual environment holding wes-gateway as a user installs it (``pip install
    '.[postgres]'``, no test tools), refreshed from this source tree; its Python."""
    folder = CACHE / "wes-gateway"
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    steps = [[f"{ROOT}[postgres]"], ["--no-deps", "--force-reinstall", str(ROOT)]]
    for arguments in steps:  # dependencies when missing, then this tree's code
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *arguments], capture_output=True, text=True
        )
        if installed.returncode != 0:
            raise RuntimeError(f"installing wes-gateway failed:\n{installed.stderr}")
    return str(python)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fresh_folder(prefix: str = "wes-gateway-bench-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def wait_until_up(process: subprocess.Popen, url: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer in {timeout:.0f} s; see {log}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)


@dataclass
class Gateway:
    base: str  # http://127.0.0.1:PORT
    token: str  # the administrator's
    process: subprocess.Popen
    data_dir: Path
    database_url: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def running_gateway(
    folder: Path, database_url: str | None = None, workers: int = 1, **settings: str
) -> Iterator[Gateway]:
    """Serve on the data folder ``folder/data`` with ``settings`` (WES_GATEWAY_* names) and
    ``workers`` API processes, and stop the server afterwards. Serving the same folder
    again keeps its runs and token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WES_GATEWAY_")}
    data_dir = folder / "data"
    database_url = database_url or f"sqlite:///{(data_dir / 'wes-gateway.db').resolve()}"
    env.update(WES_GATEWAY_DATA_DIR=str(data_dir), WES_GATEWAY_DATABASE_URL=database_url)
    env.update(settings)
    port = free_port()
    log_path = folder / "serve.log"
    with open(log_path, "a") as log:
        server = subprocess.Popen(
            [server_python, "-m", "wes_gateway", "serve", "--port", str(port)]
            + ["--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, f"{base}/healthz", log_path)
        token_file = folder / "admin-token"
        if not token_file.exists():
            token = next(
                line.strip()
                for line in log_path.read_text().splitlines()
                if line.startswith("    ")
            )
            token_file.write_text(token)
        yield Gateway(base, token_file.read_text(), server, data_dir, database_url)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def throwaway_database(url: str | None, folder: Path) -> tuple[str, Callable[[], None]]:
    """The database to measure on, and how to drop it afterwards."""
    if not url:
        return f"sqlite:///{folder / 'bench.db'}", lambda: None
    base = make_url(url)
    name = f"wes_gateway_bench_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop
