"""Head jobs on a real Slurm cluster (tests/slurm_cluster.py: slurmctld, slurmd and
munged started by the suite) reached over a real SSH connection, driven through the
product's own code path. The head job runs the Nextflow stand-in."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests import cloud
from tests.cloud import create_compute_env, state, system_logs, time_passes
from tests.conftest import WES
from tests.live import STANDIN
from tests.slurm_cluster import NODE, Cluster
from tests.ssh_keys import openssh_key, public_line
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import STATE_OF, BackendStatus, State
from wes_gateway.domain.transitions import transition
from workers import execution
from workers.backends import slurm as slurm_backend
from workers.backends.slurm import SlurmBackend, SlurmJob, report_of

STALE_AFTER_SLURM = 30.0


@pytest.fixture
def executor(db, settings, slurm) -> execution.Executor:
    """A worker whose known_hosts holds the test login node's key. Its runs go untraced
    (no public URL): the stand-in runs on its own, as the cluster sees it."""
    worker = settings.model_copy(
        update={
            "public_url": None,
            # sbatch over SSH gets half of this (a loaded machine needs more than 1 s).
            "submit_stale_after": STALE_AFTER_SLURM,
            "requeue_after": 0.0,
            "ssh_known_hosts": slurm.known_hosts,
        }
    )
    slurm_backend.close_connections()
    return execution.Executor(db=db, settings=worker)


@pytest.fixture
def counting(executor):
    """The executor, and the programs each backend it builds runs on the cluster."""
    shells: list = []

    def backend_for(platform, config):
        backend = execution.make_backend(platform, executor.settings, config)
        shells.append(backend.shell)
        return backend

    counted = execution.Executor(
        db=executor.db, settings=executor.settings, backend_for=backend_for
    )
    return counted, shells


def cluster_config(slurm: Cluster, tmp_path: Path, **overrides) -> dict:
    """The test cluster's login node; an override of None leaves the field out."""
    config = {
        "hostName": "127.0.0.1",
        "port": slurm.ssh_port,
        "userName": "root",
        "workDir": str(tmp_path / "work"),
        "launchDir": str(tmp_path / "launch"),
        "headQueue": "head",
        "computeQueue": "work",
        "sshKeyFile": str(slurm.key_file),
        "environment": [
            {"name": "PATH", "value": f"{STANDIN.parent}:{os.environ['PATH']}", "head": True}
        ],
        **overrides,
    }
    return {key: value for key, value in config.items() if value is not None}


@pytest.fixture
def compute_env(client, admin, slurm, tmp_path):
    def make(credentials_id: str | None = None, **overrides) -> str:
        name = f"slurm-{time.monotonic_ns()}"
        config = cluster_config(slurm, tmp_path, **overrides)
        return create_compute_env(
            client, admin, "slurm-platform", name, config, credentials_id=credentials_id
        )

    return make


def wes_run(client, headers, env_id: str, **params) -> str:
    return cloud.wes_run(client, headers, env_id, **{"standin_task_seconds": 0.1, **params})


def poll_until(executor, db, run_id: str, wanted: State, timeout: float = 30) -> None:
    """As on the clouds, with the time a job takes through Slurm and SSH."""
    cloud.poll_until(executor, db, run_id, wanted, timeout, interval=0.1)


def handle_of(db, run_id: str) -> dict:
    with db.session() as session:
        return json.loads(session.get(Run, run_id).backend_handle)


def test_a_wes_run_runs_as_a_slurm_job_and_completes(
    client, alice, db, slurm, compute_env, executor, tmp_path
):
    env_id = compute_env(maxQueueSize=7)
    run_id = wes_run(client, alice, env_id, standin_echo="hello from the cluster")
    execution.submit(executor, run_id)
    (job,) = slurm.jobs(name=f"nf-{run_id}")
    assert handle_of(db, run_id)["job"] == job["id"]
    poll_until(executor, db, run_id, State.RUNNING)
    poll_until(executor, db, run_id, State.COMPLETE)
    stdout = client.get(f"{WES}/runs/{run_id}/stdout", headers=alice).text
    assert "hello from the cluster" in stdout and "N E X T F L O W" in stdout
    run_log = client.get(f"{WES}/runs/{run_id}", headers=alice).json()["run_log"]
    assert run_log["exit_code"] == 0 and run_log["cmd"][0] == "nextflow"
    assert "-params-file" in run_log["cmd"]
    launch = tmp_path / "launch" / f"nf-{run_id}"
    # The launcher wrote the managed config: the tasks run with Slurm in the compute queue.
    config = (launch / "nextflow.config").read_text()
    assert "process.executor = 'slurm'" in config and "process.queue = 'work'" in config
    assert "executor.queueSize = 7" in config
    assert json.loads((launch / "params.json").read_text())["standin_echo"] == (
        "hello from the cluster"
    )
    script = launch / f"nf-{run_id}.sbatch"
    assert script.stat().st_mode & 0o077 == 0  # it holds the run's variables
    # Slurm kept the job as COMPLETED under the run's name.
    assert slurm.jobs(name=f"nf-{run_id}")[0]["state"] == "COMPLETED"
    described = client.get(f"/api/compute-envs/{env_id}", headers=alice).json()["computeEnv"]
    assert described["lastUsed"] is not None and described["platform"] == "slurm-platform"


def test_a_tower_launch_that_fails_ends_with_nextflow_s_exit_code(
    client, alice, db, slurm, compute_env, executor
):
    response = client.post(
        "/api/workflow/launch",
        headers=alice,
        json={
            "launch": {
                "pipeline": "nf-core/demo",
                "computeEnvId": compute_env(),
                "paramsText": json.dumps({"standin_fail": 2, "standin_task_seconds": 0.1}),
            }
        },
    )
    assert response.status_code == 200, response.text
    run_id = response.json()["workflowId"]
    execution.submit(executor, run_id)
    poll_until(executor, db, run_id, State.EXECUTOR_ERROR)
    described = client.get(f"/api/workflow/{run_id}", headers=alice).json()["workflow"]
    assert described["status"] == "FAILED" and described["exitStatus"] == 1
    assert slurm.jobs(name=f"nf-{run_id}")[0]["state"] == "FAILED"
    log = client.get(f"/api/workflow/{run_id}/log", headers=alice).json()["log"]
    assert any("terminated with an error exit status" in line for line in log["entries"])


def test_cancel_stops_the_job_with_sigterm_first(client, alice, db, slurm, compute_env, executor):
    run_id = wes_run(client, alice, compute_env(), standin_hang="true")
    execution.submit(executor, run_id)
    poll_until(executor, db, run_id, State.RUNNING)
    console = Path(handle_of(db, run_id)["out"])
    deadline = time.monotonic() + 20
    while "STANDIN_TASK" not in (console.read_text() if console.exists() else ""):
        assert time.monotonic() < deadline, "the stand-in started no task"
        time.sleep(0.1)
    assert client.post(f"{WES}/runs/{run_id}/cancel", headers=alice).status_code == 200
    execution.cancel(executor, run_id)
    poll_until(executor, db, run_id, State.CANCELED)
    (job,) = slurm.jobs(name=f"nf-{run_id}")
    assert job["state"] == "CANCELLED"  # gone from the queue
    # The job's processes got SIGTERM, not SIGKILL (which leaves no line): Nextflow stopped
    # its tasks, or (Slurm signals every process of the job at once) a task it was
    # running ended by that signal first, which Nextflow reports as exit status 143.
    stdout = client.get(f"{WES}/runs/{run_id}/stdout", headers=alice).text
    assert (
        "WARN: Killing running tasks" in stdout
        or "terminated with an error exit status (143)" in stdout
    ), stdout


def test_a_job_cancelled_from_outside_is_a_system_error_saying_so(
    client, alice, db, slurm, compute_env, executor
):
    run_id = wes_run(client, alice, compute_env(), standin_hang="true")
    execution.submit(executor, run_id)
    poll_until(executor, db, run_id, State.RUNNING)
    slurm.run("scancel", handle_of(db, run_id)["job"])  # an operator at the cluster
    poll_until(executor, db, run_id, State.SYSTEM_ERROR)
    logs = system_logs(client, alice, run_id)
    assert any("cancelled outside the service" in line for line in logs)


def test_a_drained_node_lets_its_job_finish_and_a_downed_one_fails_it(
    client, alice, db, slurm, compute_env, executor, tmp_path
):
    env_id = compute_env()
    finishing = wes_run(client, alice, env_id, standin_tasks=4, standin_task_seconds=1)
    execution.submit(executor, finishing)
    poll_until(executor, db, finishing, State.RUNNING)
    slurm.run("scontrol", "update", f"NodeName={NODE}", "State=DRAIN", "Reason=maintenance")
    waiting = wes_run(client, alice, env_id)
    execution.submit(executor, waiting)
    poll_until(executor, db, finishing, State.COMPLETE)
    execution.poll_active(executor)
    assert state(db, waiting) is State.INITIALIZING  # queued behind the drain
    (job,) = slurm.jobs(name=f"nf-{waiting}")
    assert job["state"] == "PENDING"
    slurm.run("scontrol", "update", f"NodeName={NODE}", "State=RESUME")
    poll_until(executor, db, waiting, State.RUNNING)
    poll_until(executor, db, waiting, State.COMPLETE)

    # Downing the node kills its jobs: the time-limited one must have timed out first.
    time_limited_report(slurm, executor, tmp_path)
    failing = wes_run(client, alice, env_id, standin_hang="true")
    execution.submit(executor, failing)
    poll_until(executor, db, failing, State.RUNNING)
    slurm.run("scontrol", "update", f"NodeName={NODE}", "State=DOWN", "Reason=power")
    poll_until(executor, db, failing, State.SYSTEM_ERROR)
    assert any("node failed" in line for line in system_logs(client, alice, failing))
    # (slurmd, still up, may have brought the node back already)
    slurm.run("scontrol", "update", f"NodeName={NODE}", "State=RESUME", check=False)
    slurm.wait_idle()


def test_a_worker_killed_between_sbatch_and_storing_the_job_id_leaves_one_job(
    client, alice, db, slurm, compute_env, executor
):
    run_id = wes_run(client, alice, compute_env(), standin_hang="true")
    # Worker 1 claims the run and runs sbatch, then dies before storing the job id.
    with db.session() as session:
        transition(session, run_id, State.INITIALIZING, "worker 1", allowed_from={State.QUEUED})
        run = session.get(Run, run_id)
        snap = execution.snapshot(run, executor.run_dir(run_id))
        config = dict(run.compute_env.config)
    first = SlurmBackend.from_settings(executor.settings, config).submit(snap)
    time_passes(db, run_id, STALE_AFTER_SLURM + 1)
    # The sweep sends the run again; worker 2 finds the job by its name.
    assert execution.sweep(executor, lambda _: None) == [run_id]
    execution.submit(executor, run_id)
    (job,) = slurm.jobs(name=f"nf-{run_id}")
    assert json.loads(first.handle)["job"] == job["id"] == handle_of(db, run_id)["job"]
    poll_until(executor, db, run_id, State.RUNNING)


def test_the_environment_check_answers_from_the_cluster(
    client, admin, alice, slurm, compute_env, executor, tmp_path
):
    good = compute_env()
    assert (
        client.get(f"/api/compute-envs/{good}", headers=admin).json()["computeEnv"]["status"]
        == "CREATING"
    )
    assert execution.check_compute_env(executor, good) == "AVAILABLE"
    assert (tmp_path / "work").is_dir()

    bad_partition = compute_env(computeQueue="nosuch")
    assert execution.check_compute_env(executor, bad_partition) == "INVALID"
    described = client.get(f"/api/compute-envs/{bad_partition}", headers=alice).json()
    assert described["computeEnv"]["status"] == "INVALID"
    assert "no partition 'nosuch'" in described["computeEnv"]["message"]
    response = client.post(
        "/api/workflow/launch",
        headers=alice,
        json={"launch": {"pipeline": "nf-core/demo", "computeEnvId": bad_partition}},
    )
    assert response.status_code == 400 and "nosuch" in response.json()["message"]


@pytest.mark.parametrize("known", ["another key", "no entry"])
def test_a_login_node_whose_host_key_is_not_known_is_refused(
    client, admin, slurm, compute_env, executor, tmp_path, known
):
    known_hosts = tmp_path / "known_hosts"
    if known == "another key":
        other = "AAAAC3NzaC1lZDI1NTE5AAAAIBYnN0Iwoj7ldHZBDCUEVwdZumKG3TuQU4wHO2nxv4Sc"
        known_hosts.write_text(f"[127.0.0.1]:{slurm.ssh_port} ssh-ed25519 {other}\n")
    else:
        known_hosts.write_text("")
    worker = execution.Executor(
        db=executor.db,
        settings=executor.settings.model_copy(update={"ssh_known_hosts": known_hosts}),
    )
    slurm_backend.close_connections()
    env_id = compute_env()
    assert execution.check_compute_env(worker, env_id) == "INVALID"
    message = client.get(f"/api/compute-envs/{env_id}", headers=admin).json()["computeEnv"][
        "message"
    ]
    words = "does not match" if known == "another key" else "not found in known_hosts"
    assert words in message and str(slurm.ssh_port) in message


def test_one_poll_cycle_is_one_squeue_at_1_20_and_100_active_runs(
    client, alice, db, slurm, compute_env, counting
):
    counted, shells = counting
    env_id = compute_env(headQueue="held")  # a partition that is down: the jobs wait
    run_ids: list[str] = []
    for active in (1, 20, 100):
        while len(run_ids) < active:
            run_ids.append(wes_run(client, alice, env_id))
            execution.submit(counted, run_ids[-1])
        assert len([job for job in slurm.jobs() if job["state"] == "PENDING"]) == active
        shells.clear()
        assert execution.poll_active(counted) == active
        (shell,) = shells
        assert shell.programs == ["squeue"], active


@pytest.mark.backing_independent
def test_jobs_gone_from_the_queue_are_asked_of_sacct_in_one_call(tmp_path):
    """The jobs slurmctld has forgotten (past MinJobAge) are looked up in the accounting
    database, all in one sacct; one that sacct does not know either fails the run."""

    class Scripted(slurm_backend.Shell):
        def _run(self, command, stdin, timeout):
            if command.startswith("squeue"):
                return slurm_backend.Result(0, b"11|nf-a|RUNNING|0|None|(null)|\n", "")
            assert "--jobs=12,13,14" in command
            out = "12|nf-b|COMPLETED|0:0|\n13|nf-c|CANCELLED by 1000|0:15|\n"
            return slurm_backend.Result(0, out.encode(), "")

    shell = Scripted()
    backend = SlurmBackend({"userName": "u", "workDir": str(tmp_path)}, shell)
    handles = [json.dumps({"job": str(n), "run": "r", "out": "o"}) for n in (11, 12, 13, 14)]
    reports = backend.poll(handles)
    assert shell.programs == ["squeue", "sacct"]
    assert [reports[h].status for h in handles] == [
        BackendStatus.RUNNING,
        BackendStatus.SUCCEEDED,
        BackendStatus.SYSTEM_FAILED,
        BackendStatus.SYSTEM_FAILED,
    ]
    assert "CANCELLED (by 1000)" in reports[handles[2]].message
    assert "no longer knows" in reports[handles[3]].message


@pytest.mark.backing_independent
@pytest.mark.parametrize(
    ("slurm_state", "exit_code", "comment", "wanted", "words"),
    [
        ("PENDING", 0, "", State.INITIALIZING, None),
        ("RUNNING", 0, "", State.RUNNING, None),
        ("COMPLETING", 0, "", State.RUNNING, None),
        ("COMPLETED", 0, "", State.COMPLETE, None),
        ("FAILED", 1, "", State.EXECUTOR_ERROR, "nextflow exited with status 1"),
        ("FAILED", 0, "", State.SYSTEM_ERROR, "FAILED"),
        ("TIMEOUT", 0, "", State.EXECUTOR_ERROR, "time limit"),
        ("OUT_OF_MEMORY", 0, "", State.SYSTEM_ERROR, "out of memory"),
        ("NODE_FAIL", 0, "", State.SYSTEM_ERROR, "node failed"),
        ("BOOT_FAIL", 0, "", State.SYSTEM_ERROR, "boot"),
        ("PREEMPTED", 0, "", State.PREEMPTED, "preempted"),
        ("CANCELLED", 0, slurm_backend.CANCEL_MARK, State.CANCELED, None),
        ("CANCELLED", 0, "", State.SYSTEM_ERROR, "cancelled outside the service"),
    ],
)
def test_slurm_states_map_to_run_states(slurm_state, exit_code, comment, wanted, words):
    job = SlurmJob("1", "nf-x", slurm_state, "None", exit_code, None, comment)
    report = report_of(job)
    assert STATE_OF[report.status] is wanted
    if words:
        assert words in report.message


def time_limited_report(slurm, executor, tmp_path):
    """What a poll reports of the job the cluster started with in its one-minute
    partition (slurm_cluster.py), once it has ended (at most 100 s after the start)."""
    backend = SlurmBackend.from_settings(executor.settings, cluster_config(slurm, tmp_path))
    handle = json.dumps({"job": slurm.time_limited_job, "run": "TimeLimit00001", "out": "-"})
    deadline = time.monotonic() + 100
    while not (report := backend.poll([handle])[handle]).finished:
        assert time.monotonic() < deadline, "no TIMEOUT"
        time.sleep(1)
    return report


def test_a_job_past_its_time_limit_fails_its_run_saying_so(slurm, executor, tmp_path):
    """A real TIMEOUT, as one poll reports it."""
    report = time_limited_report(slurm, executor, tmp_path)
    assert STATE_OF[report.status] is State.EXECUTOR_ERROR
    assert "time limit (TIMEOUT)" in report.message


def test_the_config_is_checked_on_create(client, admin):
    """Each field is checked on create: a 400 naming it (no cluster needed)."""
    base = {"hostName": "login.example.org", "userName": "nf", "workDir": "/shared/work"}

    def create(**overrides):
        config = {k: v for k, v in {**base, **overrides}.items() if v is not None}
        body = {"computeEnv": {"name": "c", "platform": "slurm-platform", "config": config}}
        return client.post("/api/compute-envs", headers=admin, json=body)

    for field, value in [
        ("hostName", None),
        ("hostName", "bad host;rm"),
        ("port", 70000),
        ("userName", "Root Admin"),
        ("workDir", "relative/work"),
        ("launchDir", "/a/../etc"),
        ("headQueue", "q;rm"),
        ("headJobOptions", "--output=/tmp/x"),
        ("headJobOptions", "--mem=4G\n#SBATCH --uid=0"),
        ("headJobOptions", "notanoption"),
        ("maxQueueSize", 0),
        ("userName", None),
        ("workDir", None),
        ("propagateHeadJobOptions", "yes"),
        ("sshKeyFile", "id_rsa"),
    ]:
        response = create(**{field: value})
        assert response.status_code == 400, (field, value, response.text)
        assert f"computeEnv.config.{field}" in response.json()["message"], (field, value)
    ok = create(headJobOptions="--mem=2G --time=1:00:00", propagateHeadJobOptions=True)
    assert ok.status_code == 200, ok.text
    shown = client.get(f"/api/compute-envs/{ok.json()['computeEnvId']}", headers=admin).json()
    config = shown["computeEnv"]["config"]
    assert config["discriminator"] == "slurm-platform" and config["port"] == 22
    assert config["launchDir"] == "/shared/work"  # the work dir when not given


def test_only_service_administrators_name_a_key_file_of_the_workers(client, make_user):
    """A workspace's owner manages its compute environments, but a key file path reads a
    file of the workers' hosts: that is the service administrators' to name."""
    boss = make_user("boss")
    org = client.post(
        "/api/orgs", headers=boss, json={"organization": {"name": "acme", "fullName": "A"}}
    ).json()["organization"]["orgId"]
    ws = client.post(
        f"/api/orgs/{org}/workspaces",
        headers=boss,
        json={"workspace": {"name": "lab", "fullName": "L", "visibility": "PRIVATE"}},
    ).json()["workspace"]["id"]
    config = {"hostName": "login.example.org", "userName": "nf", "workDir": "/shared/work"}

    def create(name: str, **extra):
        body = {"computeEnv": {"name": name, "platform": "slurm-platform", "config": extra}}
        body["computeEnv"]["config"].update(config)
        return client.post("/api/compute-envs", headers=boss, params={"workspaceId": ws}, json=body)

    refused = create("with-key", sshKeyFile="/root/.ssh/id_ed25519")
    assert refused.status_code == 403
    assert "computeEnv.config.sshKeyFile" in refused.json()["message"]
    assert create("without-key").status_code == 200


def test_localhost_runs_the_commands_on_the_worker_where_allowed(
    client, alice, db, slurm, compute_env, executor, monkeypatch
):
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))  # the worker's own Slurm client
    local = execution.Executor(
        db=executor.db, settings=executor.settings.model_copy(update={"slurm_local": True})
    )
    env_id = compute_env(hostName="localhost", port=None, sshKeyFile=None)
    assert execution.check_compute_env(local, env_id) == "AVAILABLE"
    run_id = wes_run(client, alice, env_id)
    execution.submit(local, run_id)
    poll_until(local, db, run_id, State.COMPLETE)
    assert slurm.jobs(name=f"nf-{run_id}")[0]["state"] == "COMPLETED"


def ssh_credentials(client, admin, name: str, private_key: str, passphrase: str | None) -> str:
    keys = {"privateKey": private_key, "passphrase": passphrase}
    response = client.post(
        "/api/credentials",
        headers=admin,
        json={"credentials": {"name": name, "provider": "ssh", "keys": keys}},
    )
    assert response.status_code == 200, response.text
    return response.json()["credentialsId"]


def test_named_ssh_credentials_sign_the_workers_in(
    client, admin, alice, db, slurm, compute_env, executor, tmp_path
):
    """A key stored as ssh credentials (sealed, with its passphrase) is what the workers
    sign in with: the login node authorizes it and no key file is named."""
    key = openssh_key("correct horse")
    with (slurm.folder / "ssh" / "authorized_keys").open("a") as authorized:
        authorized.write(public_line(key, "correct horse") + "\n")
    credentials_id = ssh_credentials(client, admin, "cluster", key, "correct horse")
    env_id = compute_env(credentials_id=credentials_id, sshKeyFile=None)
    described = client.get(f"/api/compute-envs/{env_id}", headers=admin).json()["computeEnv"]
    assert described["credentialsId"] == credentials_id and "sshKeyFile" not in described["config"]
    assert execution.check_compute_env(executor, env_id) == "AVAILABLE"
    run_id = wes_run(client, alice, env_id)
    execution.submit(executor, run_id)
    poll_until(executor, db, run_id, State.COMPLETE)
    assert slurm.jobs(name=f"nf-{run_id}")[0]["state"] == "COMPLETED"


def test_ssh_credentials_the_login_node_does_not_authorize_make_the_environment_invalid(
    client, admin, slurm, compute_env, executor
):
    stranger = openssh_key()  # never added to authorized_keys
    env_id = compute_env(
        credentials_id=ssh_credentials(client, admin, "stranger", stranger, None),
        sshKeyFile=None,
    )
    slurm_backend.close_connections()
    assert execution.check_compute_env(executor, env_id) == "INVALID"
    message = client.get(f"/api/compute-envs/{env_id}", headers=admin).json()["computeEnv"][
        "message"
    ]
    assert "Authentication failed" in message and str(slurm.ssh_port) in message
    assert stranger.splitlines()[2] not in message


def test_an_environment_names_ssh_credentials_or_a_key_file_not_both(
    client, admin, slurm, tmp_path
):
    credentials_id = ssh_credentials(client, admin, "both", openssh_key(), None)
    body = {
        "computeEnv": {
            "name": "both",
            "platform": "slurm-platform",
            "credentialsId": credentials_id,
            "config": cluster_config(slurm, tmp_path),
        }
    }
    response = client.post("/api/compute-envs", headers=admin, json=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith("computeEnv.credentialsId:")
    assert "not both" in response.json()["message"]


def test_other_providers_credentials_are_refused_for_slurm(client, admin, slurm, tmp_path):
    github = client.post(
        "/api/credentials",
        headers=admin,
        json={"credentials": {"name": "gh", "provider": "github", "keys": {"token": "t0k"}}},
    ).json()["credentialsId"]
    body = {
        "computeEnv": {
            "name": "gh",
            "platform": "slurm-platform",
            "credentialsId": github,
            "config": cluster_config(slurm, tmp_path, sshKeyFile=None),
        }
    }
    response = client.post("/api/compute-envs", headers=admin, json=body)
    assert response.status_code == 400
    assert "slurm-platform takes ssh credentials, not github ones" in response.json()["message"]


def test_a_run_s_outputs_are_listed_over_the_login_node_s_connection(
    client, alice, db, slurm, compute_env, executor, tmp_path
):
    """A relative outdir is the run's launch folder's on the cluster; the list is cut on
    the cluster at the bound; links are not followed there."""
    bounded = execution.Executor(
        db=db, settings=executor.settings.model_copy(update={"max_outputs": 3})
    )
    env_id = compute_env()
    run_id = wes_run(client, alice, env_id, outdir="results", standin_tasks=4)
    execution.submit(bounded, run_id)
    poll_until(bounded, db, run_id, State.COMPLETE)
    body = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    outdir = tmp_path / "launch" / f"nf-{run_id}" / "results" / "standin"
    assert body["outputs"] == {
        f"standin/standin_{n}.txt": {
            "location": str(outdir.resolve() / f"standin_{n}.txt"),
            "size": len(f"published by task {n}\n"),
        }
        for n in (1, 2, 3)
    }
    assert body["outputs_truncated"] is True
    # On the cluster, not served here: the answer names where it is.
    response = client.get(f"{WES}/runs/{run_id}/outputs/standin/standin_1.txt", headers=alice)
    assert response.status_code == 404
    assert str(outdir.resolve() / "standin_1.txt") in response.json()["msg"]

    linked = wes_run(
        client, alice, env_id, outdir=str(tmp_path / "linked"), publish_dir_mode="symlink"
    )
    execution.submit(executor, linked)
    poll_until(executor, db, linked, State.COMPLETE)
    assert client.get(f"{WES}/runs/{linked}", headers=alice).json()["outputs"] == {}
