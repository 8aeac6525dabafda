"""End to end with real processes: `wes-gateway serve` (worker and scheduler included),
a WES client, and the Nextflow stand-in as the engine.

Without the test servers every test runs on the embedded default (SQLite, the serverless
broker). With ``WES_GATEWAY_TEST_REDIS_URL`` / ``WES_GATEWAY_TEST_AMQP_URL`` set, the
tests run on those broker servers instead (the embedded broker has had its pass):

- where the broker only carries the messages (submit, cancel, the periodic poll), on
  one of them, Redis when both are named;
- where what the broker does with messages matters (a worker killed with messages taken
  but not acknowledged, a restart with messages in flight, a long queue through one
  worker slot), on each of them: Redis (kombu's virtual transport) and RabbitMQ (AMQP)
  redeliver and prefetch differently.

With ``WES_GATEWAY_TEST_DATABASE_URL`` set, each test gets a fresh PostgreSQL database.
Tests that name no backing run the same in every pass: only on the embedded default."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import empty_database
from tests.live import (
    STANDIN,
    Client,
    admin_token,
    alive,
    execution_env,
    free_port,
    group_alive,
    group_environments,
    helpers_of,
    output_of,
    separate_worker,
    serve,
    start,
)
from tests.oracle import check_response

pytestmark = pytest.mark.slow

BROKERS = {"redis": "WES_GATEWAY_TEST_REDIS_URL", "rabbitmq": "WES_GATEWAY_TEST_AMQP_URL"}
BROKER_SERVERS = [name for name, variable in BROKERS.items() if os.environ.get(variable)]
EVERY_BROKER = BROKER_SERVERS or ["embedded"]
ONE_BROKER = EVERY_BROKER[:1]

every_broker = pytest.mark.parametrize("backing", EVERY_BROKER, indirect=True)


@pytest.fixture(params=ONE_BROKER)
def backing(request, tmp_path):
    """Settings naming the broker and the database of one test."""
    with empty_database(tmp_path) as database_url:
        extra = {}
        if not database_url.startswith("sqlite"):
            extra["WES_GATEWAY_DATABASE_URL"] = database_url
        if request.param != "embedded":
            extra["WES_GATEWAY_BROKER_URL"] = os.environ[BROKERS[request.param]]
            extra["WES_GATEWAY_EMBEDDED_WORKER"] = "true"
        yield extra


def _env(tmp_path, backing, **extra):
    return execution_env(tmp_path / "data", **{**backing, **extra})


@pytest.fixture
def gateway(tmp_path, backing):
    env = _env(tmp_path, backing)
    with serve(env, kill_at_end=True) as (base, process):
        yield Client(base, admin_token(process)), env


def _wait_for_console(client, run_id: str, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in client.get(f"/runs/{run_id}/stdout").text:
        assert time.monotonic() < deadline, f"{text!r} never appeared in the console"
        time.sleep(0.1)


def _head_pid(env, run_id: str) -> int:
    path = f"{env['WES_GATEWAY_DATA_DIR']}/runs/{run_id}/head.pid"
    return int(open(path).read())


def test_run_completes_with_its_console_output(gateway):
    client, _ = gateway
    run_id = client.submit(standin_tasks=3, standin_task_seconds=0.3)
    seen = client.wait(run_id)
    assert seen[-1] == "COMPLETE", seen
    assert "RUNNING" in seen
    log = client.get(f"/runs/{run_id}").json()
    run_log = log["run_log"]
    assert run_log["exit_code"] == 0
    assert run_log["start_time"] and run_log["end_time"]
    assert run_log["cmd"][run_log["cmd"].index("run") + 1] == "nf-core/demo"
    console = client.get(f"/runs/{run_id}/stdout").text
    assert "N E X T F L O W" in console and "Succeeded   : 3" in console
    assert "Submitted process > STANDIN_TASK (3)" in console
    assert "Execution complete" in client.get(f"/runs/{run_id}/stderr").text
    # The head job reported to the trace endpoints (-with-tower): its tasks and run name.
    tasks = client.get(f"/runs/{run_id}/tasks").json()["task_logs"]
    assert [task["name"] for task in tasks] == [f"STANDIN_TASK ({n})" for n in (1, 2, 3)]
    assert all(task["exit_code"] == 0 for task in tasks)
    assert f"[{run_log['name']}] DSL2" in console  # the name nextflow gave the run
    assert "-with-tower" in run_log["cmd"]


def test_failing_pipeline_is_an_executor_error(gateway):
    client, _ = gateway
    run_id = client.submit(standin_fail=2)
    assert client.wait(run_id)[-1] == "EXECUTOR_ERROR"
    log = client.get(f"/runs/{run_id}").json()["run_log"]
    assert log["exit_code"] == 1
    assert "terminated with an error exit status (1)" in client.get(f"/runs/{run_id}/stdout").text


def test_a_crashing_head_job_reports_its_exit_code(gateway):
    client, _ = gateway
    run_id = client.submit(standin_exit=3)
    assert client.wait(run_id)[-1] == "EXECUTOR_ERROR"
    assert client.get(f"/runs/{run_id}").json()["run_log"]["exit_code"] == 3


def test_missing_nextflow_is_a_system_error(tmp_path, backing):
    env = _env(tmp_path, backing, WES_GATEWAY_NEXTFLOW="/nonexistent/nextflow")
    with serve(env, kill_at_end=True) as (base, process):
        client = Client(base, admin_token(process))
        run_id = client.submit()
        assert client.wait(run_id)[-1] == "SYSTEM_ERROR"
        log = client.get(f"/runs/{run_id}").json()["run_log"]
        assert any(
            "/nonexistent/nextflow" in line and "not found" in line for line in log["system_logs"]
        ), log


def test_a_run_that_cannot_reach_the_service_says_why(tmp_path, backing):
    """Its head job's -with-tower endpoint answers nothing: Nextflow stops before any
    trace call got through, and why is in the run's system logs, not only its console."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = _env(tmp_path, backing, WES_GATEWAY_PUBLIC_URL=nowhere)
    with serve(env, kill_at_end=True) as (base, process):
        client = Client(base, admin_token(process))
        run_id = client.submit()
        assert client.wait(run_id)[-1] == "EXECUTOR_ERROR"
        log = client.get(f"/runs/{run_id}").json()["run_log"]
        assert log["exit_code"] == 1
        reason = f"Unable to connect to Seqera Platform API: {nowhere}"
        assert log["system_logs"] == [reason]
        assert reason in client.get(f"/runs/{run_id}/stdout").text
        described = httpx.get(f"{base}/api/workflow/{run_id}", headers=client.headers).json()
        assert described["workflow"]["errorMessage"] == reason
        assert described["workflow"]["errorReport"] == reason


def test_a_deleted_run_is_removed_by_a_worker(tmp_path, backing):
    """The delete answers at once; a worker takes the purge task and removes the run's
    folder (no sweep comes during the test to do it instead)."""
    env = _env(tmp_path, backing, WES_GATEWAY_SWEEP_INTERVAL="600")
    with serve(env, kill_at_end=True) as (base, process):
        client = Client(base, admin_token(process))
        run_id = client.submit(standin_tasks=2)
        assert client.wait(run_id)[-1] == "COMPLETE"
        folder = Path(env["WES_GATEWAY_DATA_DIR"]) / "runs" / run_id
        assert (folder / "launch" / "work").is_dir()
        response = httpx.delete(f"{base}/api/workflow/{run_id}", headers=client.headers)
        assert response.status_code == 204
        assert client.get(f"/runs/{run_id}").status_code == 404
        deadline = time.monotonic() + 30
        while folder.exists():
            assert time.monotonic() < deadline, "the deleted run's folder was never removed"
            time.sleep(0.1)


def test_log_is_readable_while_the_run_is_going(gateway):
    client, env = gateway
    run_id = client.submit(standin_hang="true", standin_lines=5)
    client.wait(run_id, {"RUNNING"})
    _wait_for_console(client, run_id, "Submitted process > STANDIN_TASK (3)")
    assert "standin console line 4" in client.get(f"/runs/{run_id}/stdout").text
    client.cancel(run_id)
    client.wait(run_id)


def test_cancel_a_hanging_run(gateway):
    client, env = gateway
    run_id = client.submit(standin_hang="true")
    client.wait(run_id, {"RUNNING"})
    _wait_for_console(client, run_id, "Submitted process > STANDIN_TASK (3)")
    pid = _head_pid(env, run_id)
    assert group_alive(pid)
    assert client.cancel(run_id).status_code == 200
    assert client.state(run_id) in ("CANCELING", "CANCELED")  # stopping can be that quick
    seen = client.wait(run_id, timeout=30)
    assert seen[-1] == "CANCELED", seen
    deadline = time.monotonic() + 10
    while group_alive(pid):
        assert time.monotonic() < deadline, "the head job's process group is still alive"
        time.sleep(0.1)
    assert "Killing running tasks" in client.get(f"/runs/{run_id}/stdout").text


def test_a_head_job_gets_its_run_s_variables_and_none_of_the_service_s(tmp_path, backing):
    env = _env(
        tmp_path,
        backing,
        WES_GATEWAY_SECRET_KEY="the-service-signing-key",
        WES_GATEWAY_HEAD_JOB_ENV="PIPELINE_LICENSE, SINGULARITY_*",
        AWS_SECRET_ACCESS_KEY="the-workers-cloud-key",
        GOOGLE_APPLICATION_CREDENTIALS="/etc/the-workers-key.json",
        DATABASE_URL="postgresql://service@db/prod",
        PIPELINE_LICENSE="site-licence",
        SINGULARITY_CACHEDIR="/scratch/images",
        NXF_OPTS="-Xms500M",
        JAVA_HOME="/opt/java",
        LC_ALL="C.UTF-8",
    )
    with serve(env, kill_at_end=True) as (base, process):
        client = Client(base, admin_token(process))
        run_id = client.submit(standin_hang="true")
        client.wait(run_id, {"RUNNING"})
        _wait_for_console(client, run_id, "Submitted process > STANDIN_TASK (1)")
        environments = group_environments(_head_pid(env, run_id))
        client.cancel(run_id)
        client.wait(run_id, {"CANCELED"})  # the head job stopped, not left behind
    assert len(environments) >= 2  # the wrapper and nextflow, at least
    for seen in environments:
        leaked = {name for name in seen if name.startswith("WES_GATEWAY_")}
        leaked |= {"AWS_SECRET_ACCESS_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "DATABASE_URL"}
        assert not leaked & set(seen), leaked & set(seen)
        assert "the-service-signing-key" not in seen.values()
        assert seen["PATH"].endswith(env["PATH"])  # pyenv shims may put more before it
        assert seen["PIPELINE_LICENSE"] == "site-licence"
        assert seen["SINGULARITY_CACHEDIR"] == "/scratch/images"
        assert (seen["NXF_OPTS"], seen["JAVA_HOME"], seen["LC_ALL"]) == (
            "-Xms500M",
            "/opt/java",
            "C.UTF-8",
        )
        assert seen["TOWER_WORKFLOW_ID"] == run_id and seen["TOWER_ACCESS_TOKEN"]
        assert seen["NXF_ANSI_LOG"] == "false"


@pytest.mark.backing_independent
def test_the_head_job_variables_setting_refuses_the_service_s_own():
    from pydantic import ValidationError

    from wes_gateway.infra.config import Settings

    assert Settings(head_job_env="A_B, SINGULARITY_*").head_job_env_names == (
        "A_B",
        "SINGULARITY_*",
    )
    for bad in ("WES_GATEWAY_SECRET_KEY", "WES_GATEWAY_*", "*", "A B", "X=1"):
        with pytest.raises(ValidationError):
            Settings(head_job_env=bad)


def test_a_job_that_ignores_sigterm_is_killed_after_the_grace(gateway):
    client, env = gateway
    run_id = client.submit(standin_hang="true")
    client.wait(run_id, {"RUNNING"})
    pid = _head_pid(env, run_id)
    # A stopped process group cannot act on SIGTERM; only the SIGKILL after the grace
    # period ends it.
    os.killpg(pid, signal.SIGSTOP)
    client.cancel(run_id)
    seen = client.wait(run_id, timeout=30)
    assert seen[-1] == "CANCELED"
    deadline = time.monotonic() + 10
    while group_alive(pid):
        assert time.monotonic() < deadline
        time.sleep(0.1)


@every_broker
def test_restart_with_runs_in_flight(tmp_path, backing):
    env = _env(tmp_path, backing)
    with serve(env) as (base, process):
        token = admin_token(process)
        client = Client(base, token)
        runs = [client.submit(standin_tasks=3, standin_task_seconds=4) for _ in range(3)]
        for run_id in runs:
            client.wait(run_id, {"RUNNING"})
            _wait_for_console(client, run_id, "Submitted process > STANDIN_TASK (1)")
        pids = [_head_pid(env, run_id) for run_id in runs]
        helpers = helpers_of(process.pid)
        assert len(helpers) == 2  # the worker and the scheduler
    # The server, its worker and its scheduler are gone; the head jobs are not.
    assert not any(alive(pid) for pid in helpers)
    assert all(group_alive(pid) for pid in pids)
    port = int(base.rsplit(":", 1)[1])  # back at the address the head jobs report to
    with serve(env, port=port) as (base, _process):
        client = Client(base, token)
        for run_id in runs:
            assert client.wait(run_id, timeout=60)[-1] == "COMPLETE"


@pytest.mark.backing_independent
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_stops_its_worker_and_scheduler(tmp_path, stop):
    env = execution_env(tmp_path / "data")
    with serve(env) as (_base, process):
        helpers = helpers_of(process.pid)
        assert len(helpers) == 2
        process.send_signal(stop)
        assert process.wait(timeout=30) == 0
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in helpers):
        assert time.monotonic() < deadline, "a helper process outlived serve"
        time.sleep(0.1)


@pytest.mark.backing_independent
def test_serve_starts_its_worker_again_when_it_dies(tmp_path):
    env = execution_env(tmp_path / "data")
    with serve(env, kill_at_end=True) as (base, process):
        client = Client(base, admin_token(process))
        worker = next(pid for pid in helpers_of(process.pid) if _is_worker(pid))
        os.kill(worker, signal.SIGKILL)
        run_id = client.submit(standin_tasks=1)
        assert client.wait(run_id, timeout=60)[-1] == "COMPLETE"
        workers = [pid for pid in helpers_of(process.pid) if _is_worker(pid)]
        assert len(workers) == 1 and workers[0] != worker
        assert "worker exited (-9); starting it again" in output_of(process)


def _is_worker(pid: int) -> bool:
    return b"worker" in open(f"/proc/{pid}/cmdline", "rb").read()


@every_broker
def test_kill_the_worker_while_runs_execute(tmp_path, backing):
    env = _env(tmp_path, backing, WES_GATEWAY_EMBEDDED_WORKER="false")
    with serve(env) as (base, process), separate_worker(env, concurrency=2) as children:
        client = Client(base, admin_token(process))
        runs = [client.submit(standin_tasks=2, standin_task_seconds=1) for _ in range(4)]
        client.wait(runs[0], {"RUNNING"})
        children[0].send_signal(signal.SIGKILL)
        children[0].wait()
        runs += [client.submit(standin_tasks=1) for _ in range(2)]  # queued meanwhile
        children[0] = start("worker", "--concurrency", "2", env=env)
        for run_id in runs:
            assert client.wait(run_id, timeout=90)[-1] == "COMPLETE", run_id


@every_broker
def test_fifty_runs_through_one_worker_slot(tmp_path, backing):
    env = _env(tmp_path, backing, WES_GATEWAY_EMBEDDED_WORKER="false")
    with serve(env) as (base, process), separate_worker(env, concurrency=1):
        client = Client(base, admin_token(process))
        runs = [client.submit(standin_tasks=1, standin_task_seconds=2) for _ in range(50)]
        for run_id in runs:
            assert client.wait(run_id, timeout=120)[-1] == "COMPLETE", run_id


def test_tower_launch_runs_and_reports_to_both_apis(gateway):
    client, _ = gateway
    api = client.base.removesuffix("/ga4gh/wes/v1") + "/api"
    response = httpx.post(
        f"{api}/workflow/launch",
        headers=client.headers,
        json={
            "launch": {
                "pipeline": "nf-core/demo",
                "paramsText": "standin_tasks: 4\n",
                "runName": "tower_launched",
            }
        },
    )
    assert response.status_code == 200, response.text
    run_id = response.json()["workflowId"]
    assert client.wait(run_id)[-1] == "COMPLETE"
    described = httpx.get(f"{api}/workflow/{run_id}", headers=client.headers).json()
    assert described["workflow"]["status"] == "SUCCEEDED"
    assert described["workflow"]["runName"] == "tower_launched"
    assert described["progress"]["workflowProgress"]["succeeded"] == 4
    assert described["workflow"]["stats"]["succeedCount"] == 4
    tasks = httpx.get(f"{api}/workflow/{run_id}/tasks", headers=client.headers).json()
    assert tasks["total"] == 4
    wes_tasks = client.get(f"/runs/{run_id}/tasks").json()["task_logs"]
    assert len(wes_tasks) == 4
    console = httpx.get(f"{api}/workflow/{run_id}/download", headers=client.headers)
    assert "Succeeded   : 4" in console.text
    task_out = httpx.get(f"{api}/workflow/{run_id}/download/1", headers=client.headers)
    assert task_out.text == "task 1 output\n"
    timeline = httpx.get(
        f"{api}/workflow/{run_id}/download",
        headers=client.headers,
        params={"fileName": f"timeline-{run_id}.html"},
    )
    assert timeline.status_code == 200
    assert "execution timeline [tower_launched]" in timeline.text


def test_a_run_started_by_hand_shows_up_as_monitoring_only(gateway, tmp_path):
    client, _ = gateway
    api = client.base.removesuffix("/ga4gh/wes/v1") + "/api"
    token = client.headers["Authorization"].split()[1]
    result = subprocess.run(
        [str(STANDIN), "run", "nf-core/demo", "-with-tower", api, "--standin_tasks", "2"],
        cwd=tmp_path,
        env={**os.environ, "TOWER_ACCESS_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
    (item,) = httpx.get(f"{api}/workflow", headers=client.headers).json()["workflows"]
    run_id = item["workflow"]["id"]
    assert item["workflow"]["status"] == "SUCCEEDED"
    assert client.state(run_id) == "COMPLETE"
    assert len(client.get(f"/runs/{run_id}/tasks").json()["task_logs"]) == 2
    cancel = client.cancel(run_id)
    assert cancel.status_code == 400 and "only monitored" in cancel.json()["msg"]


def test_tw_runs_relaunch_of_a_failed_run_resumes_where_it_stopped(gateway):
    """``tw runs relaunch -i <id> --params-file fixed.json`` as Seqera's CLI makes it
    (RelaunchCmd): read the workflow and its launch, then POST /workflow/launch with
    ``resume: true``, the session, the resume dir as workDir and the resume commit as
    revision. The relaunch runs in the failed run's session: the task that had completed
    is cached, the rest run, and the run completes."""
    client, _ = gateway
    api = client.base.replace("/ga4gh/wes/v1", "/api")
    failing = {"standin_tasks": 3, "standin_fail": 2, "standin_task_seconds": 0}
    first = httpx.post(
        f"{api}/workflow/launch",
        headers=client.headers,
        json={"launch": {"pipeline": "nf-core/demo", "paramsText": json.dumps(failing)}},
    )
    assert first.status_code == 200, first.text
    failed = first.json()["workflowId"]
    assert client.wait(failed)[-1] == "EXECUTOR_ERROR"

    # tw: workflowById, then describeWorkflowLaunch.
    workflow = httpx.get(f"{api}/workflow/{failed}", headers=client.headers).json()["workflow"]
    launch = httpx.get(f"{api}/workflow/{failed}/launch", headers=client.headers).json()["launch"]
    assert launch["resumeCommitId"] is not None  # else tw relaunches without resuming
    fixed = {"standin_tasks": 3, "standin_task_seconds": 0}
    # tw reads each field through a getter: one Seqera leaves out is null.
    request = {
        "id": workflow.get("launchId"),
        "sessionId": launch["sessionId"],
        "computeEnvId": launch["computeEnv"]["id"],
        "pipeline": launch["pipeline"],
        "workDir": launch["resumeDir"],
        "revision": launch["resumeCommitId"],
        "configProfiles": launch.get("configProfiles"),
        "configText": launch.get("configText"),
        "paramsText": json.dumps(fixed),
        "preRunScript": launch.get("preRunScript"),
        "postRunScript": launch.get("postRunScript"),
        "mainScript": launch.get("mainScript"),
        "entryName": launch.get("entryName"),
        "schemaName": launch.get("schemaName"),
        "userSecrets": launch.get("userSecrets"),
        "workspaceSecrets": launch.get("workspaceSecrets"),
        "resume": True,
        "pullLatest": launch.get("pullLatest"),
        "stubRun": launch.get("stubRun"),
        "dateCreated": "2026-12-04T08:00:00Z",
        "runName": None,
        "launchContainer": None,
    }
    request["sessionId"] = workflow["sessionId"]
    second = httpx.post(f"{api}/workflow/launch", headers=client.headers, json={"launch": request})
    assert second.status_code == 200, second.text
    resumed = second.json()["workflowId"]
    assert client.wait(resumed)[-1] == "COMPLETE"
    console = client.get(f"/runs/{resumed}/stdout").text
    assert "Cached process > STANDIN_TASK (1)" in console, console
    assert "Submitted process > STANDIN_TASK (2)" in console
    assert "Cached      : 1" in console and "Succeeded   : 2" in console
    again = httpx.get(f"{api}/workflow/{resumed}", headers=client.headers).json()["workflow"]
    assert again["sessionId"] == workflow["sessionId"]
    assert again["workDir"] == workflow["workDir"]
    relaunched = httpx.get(f"{api}/workflow/{resumed}/launch", headers=client.headers).json()
    assert relaunched["launch"]["resume"] is True
    # A resume of a session nobody here ran is refused at accept, not failed in Nextflow.
    unknown = dict(request, sessionId="0f1c3a52-8c1e-4f0e-9d7a-2b3c4d5e6f70")
    refused = httpx.post(f"{api}/workflow/launch", headers=client.headers, json={"launch": unknown})
    assert refused.status_code == 404, refused.text


def test_a_run_s_published_files_are_its_outputs_and_are_served(gateway):
    """Listed by the worker once the head job has ended (the run may be COMPLETE by its
    trace a moment before), then one of them read back through the outputs endpoint."""
    client, env = gateway
    run_id = client.submit(standin_tasks=2, standin_task_seconds=0.1, outdir="results")
    assert client.wait(run_id)[-1] == "COMPLETE"
    deadline = time.monotonic() + 30
    while not (response := client.get(f"/runs/{run_id}")).json()["outputs"]:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.2)
    check_response(response)  # the official RunLog schema
    launch = Path(env["WES_GATEWAY_DATA_DIR"]).resolve() / "runs" / run_id / "launch"
    assert response.json()["outputs"] == {
        f"standin/standin_{n}.txt": {
            "location": str(launch / "results" / "standin" / f"standin_{n}.txt"),
            "size": len(f"published by task {n}\n"),
        }
        for n in (1, 2)
    }
    served = client.get(f"/runs/{run_id}/outputs/standin/standin_2.txt")
    assert served.status_code == 200 and served.text == "published by task 2\n"
    refused = client.get(f"/runs/{run_id}/outputs/standin%2F..%2F..%2Fparams.json")
    assert refused.status_code == 400 and refused.json()["msg"].startswith("path:")
