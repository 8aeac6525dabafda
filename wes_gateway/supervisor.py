"""Child processes that ``wes-gateway serve`` runs beside the API on the embedded
default: a Celery worker and the scheduler. They are stopped with the server (SIGTERM,
then SIGKILL after a grace), and the kernel stops them too if the server dies without a
word (Linux: parent-death signal)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from contextlib import contextmanager, suppress

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Not Linux: no such call, but the server's own shutdown still stops the children.
    with suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "wes_gateway", *args], preexec_fn=_die_with_parent, env=env
    )


def stop(processes: list[subprocess.Popen], grace: float = 20.0) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("pid %s did not stop in %.0fs; killing it", process.pid, grace)
            process.kill()
            process.wait()


@contextmanager
def workers_beside_the_api(enabled: bool, public_url: str):
    """Run a worker and the scheduler for as long as the block runs (if ``enabled``); the
    worker tells head jobs to report to ``public_url``."""
    quiet = ("--loglevel", "WARNING")  # the API's access log is enough on a terminal
    env = {**os.environ, "WES_GATEWAY_PUBLIC_URL": public_url}
    children = [start("worker", *quiet, env=env), start("beat", *quiet, env=env)] if enabled else []
    try:
        yield children
    finally:
        stop(children)
