"""sapporo 2.4.0, the peer WES server, in a virtual environment of its own under a cache
folder, started on a scratch run folder and seeded the way its own index expects."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.server import CACHE, free_port, wait_until_up

VERSION = "2.4.0"
PREFIX = "/ga4gh/wes/v1"
# A run.sh that leaves the run as it is: what the API costs without the engine it forks.
API_ONLY_RUN_SH = "#!/usr/bin/env bash\nexit 0\n"
LINKS_PER_FILE = 60_000  # ext4 allows 65,000 hard links to one file


def venv() -> Path:
    """The virtual environment holding sapporo, made on first use."""
    folder = CACHE / f"sapporo-{VERSION}"
    python = folder / "bin" / "python"
    if not (folder / "bin" / "sapporo").exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"sapporo=={VERSION}"],
            capture_output=True,
            text=True,
        )
        if installed.returncode != 0:
            raise RuntimeError(f"installing sapporo {VERSION} failed:\n{installed.stderr}")
    return folder


def form(engine: str = "nextflow") -> dict[str, tuple[None, str]]:
    """A run request sapporo accepts (it needs ``workflow_engine``)."""
    return {
        "workflow_type": (None, "NFL"),
        "workflow_type_version": (None, "DSL2"),
        "workflow_url": (None, "https://example.org/main.nf"),
        "workflow_engine": (None, engine),
        "workflow_params": (None, '{"input": "samplesheet.csv", "outdir": "results"}'),
        "tags": (None, '{"project": "bench"}'),
    }


class Sapporo:
    def __init__(self, folder: Path, *, api_only: bool) -> None:
        self.folder = folder
        self.run_dir = folder / "runs"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.flags = ["--run-dir", str(self.run_dir), "--url-prefix", PREFIX]
        if api_only:
            run_sh = folder / "run.sh"
            run_sh.write_text(API_ONLY_RUN_SH)
            run_sh.chmod(0o755)
            self.flags += ["--run-sh", str(run_sh)]
        self.process: subprocess.Popen | None = None
        self.base = ""

    @contextmanager
    def running(self) -> Iterator[str]:
        """Serve; yields the WES base URL."""
        port = free_port()
        with open(self.folder / "sapporo.log", "a") as log:
            self.process = subprocess.Popen(
                [str(venv() / "bin" / "sapporo"), "--host", "127.0.0.1", "--port", str(port)]
                + self.flags,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
            )
        self.base = f"http://127.0.0.1:{port}{PREFIX}"
        try:
            wait_until_up(self.process, f"{self.base}/service-info", self.folder / "sapporo.log")
            yield self.base
        finally:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def seed(self, count: int) -> None:
        """Grow the run folder to ``count`` runs: one run accepted through the API (once),
        copied under fresh ids (hard links: the files are only read), then sapporo's own
        index sync with the server's flags."""
        template = self._template()
        have = sum(1 for _ in self.run_dir.glob("*/*/state.txt"))
        for _ in range(count - have):
            run_id = str(uuid.uuid4())
            target = self.run_dir / run_id[:2] / run_id
            if (template / "state.txt").stat().st_nlink >= LINKS_PER_FILE:
                shutil.copytree(template, target)  # a file takes so many links at most
                template = target
            else:
                shutil.copytree(template, target, copy_function=os.link)
        subprocess.run(
            [str(venv() / "bin" / "python"), "-m", "sapporo.database"] + self.flags,
            check=True,
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
        )

    def _template(self) -> Path:
        found = next(self.run_dir.glob("*/*/state.txt"), None)
        if found is not None:
            return found.parent
        assert self.base, "seed() needs the server running for its first run"
        run_id = httpx.post(f"{self.base}/runs", files=form(), timeout=30).json()["run_id"]
        folder = self.run_dir / run_id[:2] / run_id
        for _ in range(300):
            state = httpx.get(f"{self.base}/runs/{run_id}/status", timeout=30).json()["state"]
            if state not in ("QUEUED", "INITIALIZING", "RUNNING"):
                break
            time.sleep(0.1)
        return folder
