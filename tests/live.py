"""Running the real command line: ``wes-gateway`` as a user would, in a child process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

from tests import oracle
from wes_gateway.infra.config import WES_BASE_PATH


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
def serve(
    env: dict[str, str], *, timeout: float = 60, port: int | None = None, kill_at_end: bool = False
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start ``wes-gateway serve`` (on a free port unless given); yields (base URL, process).

    The block ends with SIGTERM, as a service manager stops the server: it stops its worker
    and scheduler first (on the embedded broker the worker takes a few seconds). With
    ``kill_at_end``, for a test that has checked everything it checks inside the block,
    the server and the processes it started are SIGKILLed instead."""
    port = port or free_port()
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
        if kill_at_end:
            _kill_with_helpers(process)
        else:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _kill_with_helpers(process: subprocess.Popen) -> None:
    """SIGKILL a server and the worker and scheduler it started, and wait until they are
    gone (a helper started meanwhile gets SIGTERM from the kernel as the server dies)."""
    helpers = helpers_of(process.pid)
    process.kill()
    process.wait()
    for pid in helpers:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.05)


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


STANDIN = Path(__file__).resolve().parent / "standin" / "nextflow"
TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}


def execution_env(data_dir: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """Settings for a gateway that really runs things, with short intervals for tests, on a
    queue of its own (a broker server may be shared by several tests)."""
    settings = {
        "WES_GATEWAY_QUEUE": f"test-{time.time_ns()}",
        "WES_GATEWAY_NEXTFLOW": str(STANDIN),
        "WES_GATEWAY_POLL_INTERVAL": "0.3",
        "WES_GATEWAY_SWEEP_INTERVAL": "1",
        "WES_GATEWAY_REQUEUE_AFTER": "3",
        "WES_GATEWAY_SUBMIT_STALE_AFTER": "3",
        "WES_GATEWAY_CANCEL_GRACE": "3",
    }
    return cli_env(data_dir, database_url, **{**settings, **extra})


class Client:
    """A WES client of a live gateway."""

    def __init__(self, base: str, token: str) -> None:
        self.base = f"{base}/ga4gh/wes/v1"
        self.headers = {"Authorization": f"Bearer {token}"}

    def submit(
        self, pipeline: str = "nf-core/demo", engine_parameters: dict | None = None, **params
    ) -> str:
        response = httpx.post(
            f"{self.base}/runs",
            headers=self.headers,
            files={
                "workflow_type": (None, "NFL"),
                "workflow_type_version": (None, "DSL2"),
                "workflow_url": (None, pipeline),
                "workflow_params": (None, json.dumps(params)),
                "workflow_engine_parameters": (None, json.dumps(engine_parameters or {})),
            },
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()["run_id"]

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers=self.headers, timeout=30)

    def state(self, run_id: str) -> str:
        return self.get(f"/runs/{run_id}/status").json()["state"]

    def cancel(self, run_id: str) -> httpx.Response:
        return httpx.post(f"{self.base}/runs/{run_id}/cancel", headers=self.headers, timeout=30)

    def wait(self, run_id: str, states: set[str] | None = None, timeout: float = 60) -> list[str]:
        """Poll until the run is in one of ``states`` (terminal by default); returns the
        distinct states seen, in order."""
        states = states or TERMINAL
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(run_id)
            if not seen or seen[-1] != state:
                seen.append(state)
            if state in states:
                return seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {state} after {timeout}s: {seen}")
            time.sleep(0.1)


def admin_token(process: subprocess.Popen) -> str:
    return next(line.strip() for line in output_of(process).splitlines() if line.startswith("    "))


@contextmanager
def separate_worker(env: dict[str, str], concurrency: int) -> Iterator[list[subprocess.Popen]]:
    """A worker and the scheduler run apart from serve, killed at the end of the block.
    Yields the list [worker, scheduler]; a test may replace the worker in it."""
    children = [start("worker", "--concurrency", str(concurrency), env=env), start("beat", env=env)]
    try:
        yield children
    finally:
        for child in children:
            child.kill()
            child.wait()


def start(*args: str, env: dict[str, str]) -> subprocess.Popen:
    """Another wes-gateway process (a worker, the scheduler), its output in the log dir."""
    log_path = Path(env["WES_GATEWAY_DATA_DIR"]).parent / f"{args[0]}-{time.time_ns()}.log"
    return subprocess.Popen(
        command(*args),
        env=env,
        stdout=open(log_path, "w"),
        stderr=subprocess.STDOUT,  # noqa: SIM115
    )


def _processes() -> Iterator[tuple[int, str, int, int, Path]]:
    """(pid, state, parent pid, process group, /proc entry) of every process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        yield int(entry.name), fields[0], int(fields[1]), int(fields[2]), entry


def _running(state: str) -> bool:
    return state not in ("Z", "X")  # a zombie has ended; it only awaits its parent


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs."""
    return any(group == pgid and _running(state) for _, state, _, group, _ in _processes())


def group_environments(pgid: int) -> list[dict[str, str]]:
    """The environment of every live process of the group, as it was started."""
    found = []
    for _, state, _, group, entry in _processes():
        if group == pgid and _running(state):
            with suppress(OSError):
                raw = (entry / "environ").read_bytes()
                pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
                found.append({key.decode(): value.decode() for key, _, value in pairs})
    return found


def helpers_of(pid: int) -> list[int]:
    """The wes-gateway processes (worker, scheduler) that ``pid`` started and that live."""
    found = []
    for child, state, parent, _, entry in _processes():
        if parent == pid and _running(state):
            with suppress(OSError):
                if b"wes_gateway" in (entry / "cmdline").read_bytes():
                    found.append(child)
    return found


def alive(pid: int) -> bool:
    return any(child == pid and _running(state) for child, state, _, _, _ in _processes())


def until(check, what: str, timeout: float = 30):
    """``check()``'s first true value, asked every 0.2 s; an assertion naming ``what``
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _spec_checked(response: httpx.Response) -> None:
    if response.request.url.path.startswith(WES_BASE_PATH):
        response.read()
        oracle.check_response(response)


@contextmanager
def spec_checked_client(base: str, token: str) -> Iterator[httpx.Client]:
    """An HTTP client of a live gateway whose WES answers are checked against the
    official spec."""
    with httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        event_hooks={"response": [_spec_checked]},
    ) as client:
        yield client
