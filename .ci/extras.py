"""Each install a user can choose, alone in a fresh virtual environment, starting what it
serves: the plain install serves the API on the embedded default and runs a worker on
RabbitMQ (py-amqp comes with Celery); `[postgres]` serves on PostgreSQL; `[redis]` runs a
worker on Redis; `[aws]`, `[google]` and `[slurm]` run a worker that loads its platform's
backend.
A server that does not answer here skips the checks that need it, saying so."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
AMQP = "amqp://guest:guest@127.0.0.1:5672//"


def answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def install(folder: Path, extra: str) -> Path:
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    target = f"{ROOT}[{extra}]" if extra else str(ROOT)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", target],
        check=True,
    )
    return venv / "bin" / "wes-gateway"


def environment(folder: Path, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WES_GATEWAY_")}
    env.update(WES_GATEWAY_DATA_DIR=str(folder / "data"), **settings)
    return env


def until(process: subprocess.Popen, log: Path, ready, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit(f"{what} did not start:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.5)


def started(script: Path, args: list[str], env: dict[str, str], ready, what: str) -> None:
    log = Path(env["WES_GATEWAY_DATA_DIR"]).parent / f"{args[0]}.log"
    with open(log, "w") as out:
        process = subprocess.Popen([str(script), *args], env=env, stdout=out, stderr=out)
    try:
        until(process, log, lambda: ready(log), what)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    print(f"ok: {what}")


def healthy(port: int):
    def check(_log: Path) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    return check


def worker_ready(log: Path) -> bool:
    return " ready." in log.read_text(errors="replace")


def upgrade(script: Path, env: dict[str, str]) -> None:
    subprocess.run([str(script), "db", "upgrade"], env=env, check=True, timeout=120)


def serves_the_api(script: Path, env: dict[str, str], what: str) -> None:
    upgrade(script, env)
    port = free_port()
    started(script, ["serve", "--port", str(port)], env, healthy(port), what)


def runs_a_worker(script: Path, env: dict[str, str], what: str) -> None:
    upgrade(script, env)
    started(script, ["worker", "--concurrency", "1"], env, worker_ready, what)


def loads_backend(script: Path, platform: str) -> None:
    python = script.with_name("python")
    code = f"from workers.backends import backend_class; backend_class({platform!r})"
    subprocess.run([str(python), "-c", code], check=True)
    print(f"ok: the {platform} backend loads")


def main() -> None:
    queue = {"WES_GATEWAY_QUEUE": f"extras-{uuid.uuid4().hex[:8]}"}
    with tempfile.TemporaryDirectory(prefix="wes-gateway-extras-") as scratch:
        base = Path(scratch)
        for extra in ("", "postgres", "redis", "aws", "google", "slurm"):
            folder = base / (extra or "plain")
            folder.mkdir()
            label = f"pip install '.[{extra}]'" if extra else "pip install ."
            print(f"== {label}", flush=True)
            script = install(folder, extra)
            if extra == "":
                serves_the_api(script, environment(folder), "serve on the embedded default")
                if answers(5672):
                    env = environment(folder, WES_GATEWAY_BROKER_URL=AMQP, **queue)
                    runs_a_worker(script, env, "a worker on RabbitMQ")
                else:
                    print("skipped: RabbitMQ does not answer")
            elif extra == "postgres":
                if answers(5432):
                    env = environment(folder, WES_GATEWAY_DATABASE_URL=POSTGRES + "_extras")
                    create = ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c"]
                    drop = "DROP DATABASE IF EXISTS test_extras"
                    subprocess.run([*create, drop], check=True, stderr=subprocess.DEVNULL)
                    subprocess.run([*create, "CREATE DATABASE test_extras"], check=True)
                    serves_the_api(script, env, "serve on PostgreSQL")
                    subprocess.run([*create, "DROP DATABASE test_extras WITH (FORCE)"], check=True)
                else:
                    print("skipped: PostgreSQL does not answer")
            elif extra == "redis":
                if answers(6379):
                    env = environment(folder, WES_GATEWAY_BROKER_URL=REDIS, **queue)
                    runs_a_worker(script, env, "a worker on Redis")
                else:
                    print("skipped: Redis does not answer")
            else:
                platform = {
                    "aws": "aws-batch",
                    "google": "google-batch",
                    "slurm": "slurm-platform",
                }[extra]
                loads_backend(script, platform)
                runs_a_worker(script, environment(folder), f"a worker with [{extra}]")


if __name__ == "__main__":
    main()
