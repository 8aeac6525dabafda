"""A scaled-out gateway of real processes for the reliability tests, and what they read
back from it: the API (``wes-gateway serve`` without its embedded worker), workers and
the scheduler started apart so a test can kill them, and the head jobs' own files."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import empty_database
from tests.live import execution_env, start

# The broker servers the CI environment may name, in the order a test prefers them.
BROKERS = {"redis": "WES_GATEWAY_TEST_REDIS_URL", "rabbitmq": "WES_GATEWAY_TEST_AMQP_URL"}


@contextmanager
def ci_backing(folder: Path, prefer: tuple[str, ...] = ("redis", "rabbitmq")) -> Iterator[dict]:
    """Settings naming the database and the broker the CI environment selects: a fresh
    PostgreSQL database when WES_GATEWAY_TEST_DATABASE_URL is set (SQLite in the data
    folder otherwise) and the first broker of ``prefer`` that is set (the serverless one
    otherwise). One backing per test keeps the suite's time bounded."""
    with empty_database(folder) as database_url:
        extra = {}
        if not database_url.startswith("sqlite"):
            extra["WES_GATEWAY_DATABASE_URL"] = database_url
        for name in prefer:
            if os.environ.get(BROKERS[name]):
                extra["WES_GATEWAY_BROKER_URL"] = os.environ[BROKERS[name]]
                break
        yield extra


def scaled_out_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """Settings of an API on ``port`` whose workers run apart: they tell head jobs to
    report to that port (-with-tower)."""
    return execution_env(
        data_dir,
        WES_GATEWAY_EMBEDDED_WORKER="false",
        WES_GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{port}",
        **extra,
    )


def log_of(process: subprocess.Popen) -> Path:
    """The file a process started by ``tests.live.start`` writes its output to."""
    return Path(os.readlink(f"/proc/{process.pid}/fd/1"))


def start_worker(
    env: dict[str, str], concurrency: int = 2, timeout: float = 30
) -> subprocess.Popen:
    """A worker process, returned once it consumes from the broker."""
    worker = start("worker", "--concurrency", str(concurrency), env=env)
    try:
        wait_ready(worker, timeout)
    except BaseException:
        worker.kill()
        worker.wait()
        raise
    return worker


def wait_ready(worker: subprocess.Popen, timeout: float = 30) -> None:
    log = log_of(worker)

    def ready() -> bool:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.returncode}):\n{log.read_text()}")
        return " ready." in log.read_text(errors="replace")

    wait_until(ready, timeout, "worker ready")


def stop(process: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM, as a service manager stops a process; returns its exit status."""
    process.terminate()
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def wait_until(condition: Callable[[], object], timeout: float, what: str, every=0.1):
    """Call ``condition`` until it returns something true (returned), for ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not so after {timeout}s")
        time.sleep(every)


def run_dir(env: dict[str, str], run_id: str) -> Path:
    return Path(env["WES_GATEWAY_DATA_DIR"]) / "runs" / run_id


def head_job_starts(env: dict[str, str], run_id: str) -> int:
    """How many times a head job of the run started ``nextflow``: every start appends a
    ``$> nextflow ...`` line to the run's Nextflow log (``-log nf-<id>.log``, opened for
    appending), before it does anything else, so a second start cannot go unseen."""
    log = run_dir(env, run_id) / f"nf-{run_id}.log"
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return 0
    return sum(" - $> nextflow " in line for line in text.splitlines())


def exit_code_on_disk(env: dict[str, str], run_id: str) -> int | None:
    """What the head job wrapper recorded as nextflow's exit code, if it has."""
    try:
        return int((run_dir(env, run_id) / "exitcode").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def registered_with_the_api(env: dict[str, str], run_id: str) -> bool:
    """Whether the run's head job is past its first trace call (``create``, then
    ``begin``): its console shows the executor line printed after them. Nextflow gives
    up at once when that first call fails (it retries the later ones), so a test that
    takes the API away waits for this first."""
    console = run_dir(env, run_id) / f"nf-{run_id}.txt"
    try:
        return "executor >" in console.read_text(errors="replace")
    except FileNotFoundError:
        return False
