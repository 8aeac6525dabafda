"""Child processes that ``wes-gateway serve`` runs beside the API on the embedded
default: a Celery worker and the scheduler. One that exits while the server runs is
started again (after a pause that grows while it keeps failing). They are stopped with
the server (SIGTERM, then SIGKILL after a grace), and the kernel stops them too if the
server dies without a word (Linux: parent-death signal)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
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


class Supervisor:
    """Keeps one process per command alive; ``children`` holds the current ones."""

    def __init__(self, commands: list[tuple[str, ...]], env: dict[str, str]) -> None:
        self.commands = commands
        self.env = env
        self.children = [start(*command, env=env) for command in commands]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._watcher.start()

    def _watch(self, every: float = 1.0, longest_pause: float = 30.0) -> None:
        pauses = [every] * len(self.commands)
        while not self._stopping.wait(every):
            for index, command in enumerate(self.commands):
                code = self.children[index].poll()
                if code is None:
                    pauses[index] = every
                    continue
                log.warning("%s exited (%s); starting it again", command[0], code)
                if self._stopping.wait(pauses[index]):
                    return
                pauses[index] = min(longest_pause, pauses[index] * 2)
                with self._lock:
                    if self._stopping.is_set():
                        return
                    self.children[index] = start(*command, env=self.env)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            stop(self.children)


@contextmanager
def workers_beside_the_api(enabled: bool, public_url: str):
    """Run a worker and the scheduler for as long as the block runs (if ``enabled``); the
    worker tells head jobs to report to ``public_url``."""
    if not enabled:
        yield []
        return
    quiet = ("--loglevel", "WARNING")  # the API's access log is enough on a terminal
    env = {**os.environ, "WES_GATEWAY_PUBLIC_URL": public_url}
    supervisor = Supervisor([("worker", *quiet), ("beat", *quiet)], env)
    try:
        yield supervisor.children
    finally:
        supervisor.stop()
