"""What the cloud backend tests share: a worker's executor, runs on a compute
environment, and polling until a run reaches a state."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import WES, submit
from tests.live import STANDIN
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import State
from wes_gateway.domain.transitions import transition
from wes_gateway.infra.config import MIN_SUBMIT_STALE_AFTER
from workers import execution

PUBLIC_URL = "http://gateway.example:8000"


# The shortest takeover window the settings allow.
STALE_AFTER = MIN_SUBMIT_STALE_AFTER


@pytest.fixture
def executor(db, settings) -> execution.Executor:
    """A worker that re-sends at once and takes over submits as soon as the settings
    allow, reachable at PUBLIC_URL."""
    worker_settings = settings.model_copy(
        update={"public_url": PUBLIC_URL, "submit_stale_after": STALE_AFTER, "requeue_after": 0.0}
    )
    return execution.Executor(db=db, settings=worker_settings)


def time_passes(db, run_id: str, seconds: float = STALE_AFTER + 1) -> None:
    """As if the run's last change were ``seconds`` older (a submit left that long ago)."""
    with db.session() as session:
        run = session.get(Run, run_id)
        run.updated_at -= timedelta(seconds=seconds)


def create_compute_env(
    client, admin, platform: str, name: str, config: dict, credentials_id: str | None = None
) -> str:
    body = {"computeEnv": {"name": name, "platform": platform, "config": config}}
    if credentials_id is not None:
        body["computeEnv"]["credentialsId"] = credentials_id
    response = client.post("/api/compute-envs", headers=admin, json=body)
    assert response.status_code == 200, response.text
    return response.json()["computeEnvId"]


def wes_run(client, headers, env_id: str, **params) -> str:
    return submit(
        client,
        headers,
        workflow_params=json.dumps(params),
        workflow_engine_parameters=json.dumps({"compute_env_id": env_id}),
    )


def tower_launch(client, headers, env_id: str) -> str:
    response = client.post(
        "/api/workflow/launch",
        headers=headers,
        json={"launch": {"pipeline": "nf-core/demo", "computeEnvId": env_id}},
    )
    assert response.status_code == 200, response.text
    return response.json()["workflowId"]


def system_logs(client, headers, run_id: str) -> list[str]:
    """What the run's WES log says of why it ended."""
    return client.get(f"{WES}/runs/{run_id}", headers=headers).json()["run_log"]["system_logs"]


def state(db, run_id: str) -> State:
    with db.session() as session:
        return session.get(Run, run_id).state


def poll_until(
    executor, db, run_id: str, wanted: State, timeout: float = 10, interval: float = 0.05
) -> None:
    """Run poll cycles until the run is ``wanted``."""
    deadline = time.monotonic() + timeout
    while state(db, run_id) is not wanted:
        assert time.monotonic() < deadline, f"{run_id} is {state(db, run_id)}, not {wanted}"
        execution.poll_active(executor)
        time.sleep(interval)


def submit_then_crash(db, executor, run_id: str, backend_class):
    """What a worker that dies mid-submit leaves: the run claimed (INITIALIZING) and its
    cloud job made, but no handle stored. Returns that first submission."""
    with db.session() as session:
        transition(session, run_id, State.INITIALIZING, "worker 1", allowed_from={State.QUEUED})
        run = session.get(Run, run_id)
        snap = execution.snapshot(run, executor.run_dir(run_id))
        config = run.compute_env.config
    submission = backend_class(config).submit(snap)
    time_passes(db, run_id)  # the worker died a while ago
    return submission


def run_head_container(
    command: list[str], environment: dict[str, str], folder: Path, log: Callable[[str], None]
) -> int:
    """Run a cloud head job's container command here, as its container would: the head
    job's launcher with the Nextflow stand-in as ``nextflow``, in ``folder``, each console
    line handed to ``log`` (the cloud's log service) as it is printed. Returns the exit
    code."""
    env = {
        "PATH": f"{STANDIN.parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(folder),
        **environment,
        "NXF_LAUNCH_DIR": str(folder),
    }
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        log(line.rstrip("\n"))
    return process.wait(timeout=60)
