"""What every reliability test gets: no head job outlives it, whatever way it ends."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from tests.live import group_alive


def _stop_head_jobs(folder: Path) -> None:
    """SIGKILL the process group of every head job started under ``folder`` that still
    runs (head jobs are detached: they outlive the workers and servers that started
    them). A pid is only signalled if its command line names its run's folder, so a pid
    reused since by another process is left alone."""
    for pid_file in folder.glob("**/runs/*/head.pid"):
        with suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if str(pid_file).encode() in cmdline and group_alive(pid):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture(autouse=True)
def _no_head_job_left(tmp_path: Path) -> Iterator[None]:
    yield
    _stop_head_jobs(tmp_path)
