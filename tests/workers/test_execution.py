"""The worker side, called as plain functions on the real database with real head jobs
(the Nextflow stand-in): the command builder, the local backend, and the submit /
poll / cancel / sweep logic under interruptions."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.cloud import STALE_AFTER, create_compute_env, time_passes, wes_run
from tests.cloud import state as state_of
from tests.conftest import submit as submit_over_wes
from tests.live import STANDIN, group_alive
from wes_gateway.domain.errors import InvalidField
from wes_gateway.domain.launch import RunSnapshot, build_command
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import BackendStatus, State
from wes_gateway.domain.transitions import transition
from workers import execution
from workers.backends import MissingSDK, UnknownPlatform, backend_class
from workers.backends.local import LocalBackend


def _snapshot(tmp_path: Path, **fields) -> RunSnapshot:
    return RunSnapshot(
        run_id="R" * 14,
        pipeline="nf-core/demo",
        pipeline_is_local=False,
        run_dir=tmp_path,
        **fields,
    )


@pytest.mark.backing_independent
def test_command_is_an_argv_with_every_option(tmp_path):
    run = _snapshot(
        tmp_path,
        revision="3.14.0",
        profile="test,docker",
        entry="MAIN",
        main_script="flows/main.nf",
        resume="5f2b8c1e-0d0a-4c7e-9b1f-3e2d1c0b9a88",
        latest=True,
        run_name="happy_turing",
        tower_url="http://gw/api",
    )
    argv = build_command(
        run, log_file="/r/nf.log", params_file="/r/params.json", config_file="/r/nextflow.config"
    )
    assert argv == [
        "nextflow",
        "-log",
        "/r/nf.log",
        "-c",
        "/r/nextflow.config",
        "run",
        "nf-core/demo",
        "-name",
        "happy_turing",
        "-r",
        "3.14.0",
        "-profile",
        "test,docker",
        "-params-file",
        "/r/params.json",
        "-main-script",
        "flows/main.nf",
        "-entry",
        "MAIN",
        "-resume",
        "5f2b8c1e-0d0a-4c7e-9b1f-3e2d1c0b9a88",
        "-latest",
        "-with-tower",
        "http://gw/api",
        "-ansi-log",
        "false",
    ]
    assert build_command(_snapshot(tmp_path, resume="true"))[-4:] == [
        "nf-core/demo",
        "-resume",
        "-ansi-log",
        "false",
    ]


@pytest.mark.backing_independent
def test_stub_run_and_work_dir_reach_the_command(tmp_path):
    argv = build_command(_snapshot(tmp_path, stub_run=True, work_dir="s3://bucket/w"))
    assert argv[argv.index("-stub-run") + 1 : argv.index("-stub-run") + 3] == [
        "-w",
        "s3://bucket/w",
    ]


@pytest.mark.backing_independent
def test_a_cloud_head_job_always_has_a_run_name_nextflow_takes(tmp_path):
    """Without a history file (NXF_IGNORE_RESUME_HISTORY) Nextflow refuses to run without
    -name; the one given matches Nextflow's run-name rule."""
    from wes_gateway.domain.launch import RUN_NAME
    from workers.backends import head_job

    for run_id in ("3V5QcabVRPtuSM", "0abcdefghijklm"):
        argv = head_job.command(replace(_snapshot(tmp_path), run_id=run_id))
        name = argv[argv.index("-name") + 1]
        assert RUN_NAME.fullmatch(name), name
    named = head_job.command(_snapshot(tmp_path, run_name="mine"))
    assert named[named.index("-name") + 1] == "mine"


@pytest.mark.backing_independent
@pytest.mark.parametrize(
    "fields",
    [
        {"revision": "--foo"},
        {"profile": "a b"},
        {"entry": "$(x)"},
        {"pipeline": "file:///etc"},
        {"pipeline": "-x"},
        {"main_script": "../up.nf"},
    ],
)
def test_command_refuses_unsafe_values(tmp_path, fields):
    run = _snapshot(tmp_path, **{k: v for k, v in fields.items() if k != "pipeline"})
    if "pipeline" in fields:
        run = RunSnapshot(
            run_id="R" * 14, pipeline=fields["pipeline"], pipeline_is_local=False, run_dir=tmp_path
        )
    with pytest.raises(InvalidField):
        build_command(run)


@pytest.mark.backing_independent
def test_registry_picks_by_platform():
    assert backend_class(None) is LocalBackend
    assert backend_class("local-platform") is LocalBackend
    with pytest.raises(UnknownPlatform):
        backend_class("mainframe")


@pytest.mark.backing_independent
def test_local_backend_runs_polls_and_reads_the_log(tmp_path):
    backend = LocalBackend(nextflow=str(STANDIN))
    run = _snapshot(tmp_path / "run", params={"standin_tasks": 2, "standin_task_seconds": 0.5})
    submission = backend.submit(run)
    assert submission.started
    assert submission.command[0] == str(STANDIN)
    assert json.loads((tmp_path / "run" / "params.json").read_text())["standin_tasks"] == 2
    assert backend.poll([submission.handle])[submission.handle].status is BackendStatus.RUNNING
    deadline = time.monotonic() + 20
    while not (report := backend.poll([submission.handle])[submission.handle]).finished:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert report.status is BackendStatus.SUCCEEDED and report.exit_code == 0
    lines, cursor = backend.read_log(submission.handle, None)
    assert lines[0].startswith("N E X T F L O W") and lines[-1] == "Succeeded   : 2"
    assert backend.read_log(submission.handle, cursor) == ([], cursor)
    assert not backend.cancel(submission.handle)  # nothing left to stop


@pytest.mark.backing_independent
def test_a_vanished_head_job_is_a_system_failure(tmp_path):
    backend = LocalBackend(nextflow=str(STANDIN))
    submission = backend.submit(_snapshot(tmp_path / "run", params={"standin_hang": "true"}))
    pid = json.loads(submission.handle)["pid"]
    assert backend.cancel(submission.handle, force=True)  # SIGKILL: no exit code written
    deadline = time.monotonic() + 10
    while group_alive(pid):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    report = backend.poll([submission.handle])[submission.handle]
    assert report.status is BackendStatus.SYSTEM_FAILED
    assert "without reporting an exit code" in report.message


@pytest.fixture
def executor(db, settings):
    worker_settings = settings.model_copy(
        update={
            "nextflow": str(STANDIN),
            "submit_stale_after": STALE_AFTER,
            "requeue_after": 0.0,
            "cancel_grace": 5.0,
        }
    )
    return execution.Executor(db=db, settings=worker_settings)


def test_interrupted_submit_is_taken_over_without_a_second_job(client, alice, db, executor):
    run_id = submit_over_wes(client, alice, workflow_params='{"standin_task_seconds": 1}')
    # A worker claims the run and starts its head job, then dies before storing the handle.
    with db.session() as session:
        transition(session, run_id, State.INITIALIZING, "worker 1", allowed_from={State.QUEUED})
        run = session.get(Run, run_id)
        first = LocalBackend(nextflow=str(STANDIN)).submit(
            execution.snapshot(run, executor.run_dir(run_id))
        )
    time_passes(db, run_id)
    # The sweeper re-sends it; another worker's submit adopts the running job.
    assert execution.sweep(executor, lambda _: None) == [run_id]
    execution.submit(executor, run_id)
    with db.session() as session:
        run = session.get(Run, run_id)
        assert json.loads(run.backend_handle)["pid"] == json.loads(first.handle)["pid"]
        assert run.state is State.RUNNING
    console = Path(executor.run_dir(run_id)) / f"nf-{run_id}.txt"
    deadline = time.monotonic() + 20
    while execution.poll_active(executor):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert (
        client.get(f"/ga4gh/wes/v1/runs/{run_id}/status", headers=alice).json()["state"]
        == "COMPLETE"
    )
    assert console.read_text().count("Launching") == 1


def test_a_repeated_submit_does_nothing(client, alice, db, executor):
    run_id = submit_over_wes(client, alice)
    execution.submit(executor, run_id)
    with db.session() as session:
        handle = session.get(Run, run_id).backend_handle
    execution.submit(executor, run_id)
    with db.session() as session:
        run = session.get(Run, run_id)
        assert run.backend_handle == handle and run.submit_attempts == 1
    while execution.poll_active(executor):
        time.sleep(0.2)


@pytest.mark.parametrize("job_started", [False, True])
def test_a_run_cancelled_during_an_interrupted_submit(client, alice, db, executor, job_started):
    run_id = submit_over_wes(client, alice, workflow_params='{"standin_hang": "true"}')
    with db.session() as session:
        transition(session, run_id, State.INITIALIZING, "claimed", allowed_from={State.QUEUED})
        run = session.get(Run, run_id)
        if job_started:  # the submit got as far as starting the head job, then died
            pid = json.loads(
                LocalBackend(nextflow=str(STANDIN))
                .submit(execution.snapshot(run, executor.run_dir(run_id)))
                .handle
            )["pid"]
        transition(session, run_id, State.CANCELING, "cancelled by alice")
    time_passes(db, run_id)
    execution.sweep(executor, lambda _: None)
    deadline = time.monotonic() + 20
    while execution.poll_active(executor):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    with db.session() as session:
        assert session.get(Run, run_id).state is State.CANCELED
    if job_started:
        while group_alive(pid):
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_submit_failure_is_a_system_error(client, alice, db, executor):
    run_id = submit_over_wes(client, alice)
    broken = execution.Executor(
        db=db, settings=executor.settings.model_copy(update={"nextflow": "/no/such/nextflow"})
    )
    execution.submit(broken, run_id)
    with db.session() as session:
        run = session.get(Run, run_id)
        assert run.state is State.SYSTEM_ERROR
        assert "'/no/such/nextflow' was not found" in run.error_message


def test_sweep_resends_only_stale_queued_runs(client, alice, db, executor):
    fresh = submit_over_wes(client, alice)
    stale = submit_over_wes(client, alice)
    with db.session() as session:
        session.execute(
            update(Run)
            .where(Run.id == stale)
            .values(updated_at=datetime.now(UTC) - timedelta(minutes=5))
        )
    patient = execution.Executor(
        db=db, settings=executor.settings.model_copy(update={"requeue_after": 60.0})
    )
    resent: list[str] = []
    assert execution.sweep(patient, resent.append) == [stale]
    assert resent == [stale]
    assert fresh not in resent
    # Re-sending restarts its clock: the next sweep leaves it alone.
    assert execution.sweep(patient, resent.append) == []


def test_a_force_deleted_run_is_stopped_then_purged(client, alice, db, executor):
    run_id = submit_over_wes(client, alice, workflow_params='{"standin_hang": "true"}')
    execution.submit(executor, run_id)
    with db.session() as session:
        run = session.get(Run, run_id)
        assert run.state is State.RUNNING
        pid = json.loads(run.backend_handle)["pid"]
    run_dir = Path(executor.run_dir(run_id))
    assert run_dir.is_dir() and group_alive(pid)
    response = client.delete(f"/api/workflow/{run_id}?force=true", headers=alice)
    assert response.status_code == 204
    assert client.get(f"/api/workflow/{run_id}", headers=alice).status_code == 404
    execution.cancel(executor, run_id)  # what the enqueued cancel task does
    deadline = time.monotonic() + 20
    while True:
        execution.poll_active(executor)
        with db.session() as session:
            if session.get(Run, run_id) is None:
                break
        assert time.monotonic() < deadline, "the deleted run was never purged"
        time.sleep(0.2)
    assert not group_alive(pid)
    assert not run_dir.exists()


def test_the_sweep_removes_deleted_runs_whose_purge_was_lost(client, alice, db, executor):
    """The API marked the runs deleted; the purge messages were lost, or a purge was cut
    short after removing the folder: the sweep finishes the job."""
    runs = [submit_over_wes(client, alice) for _ in range(2)]
    folders = [Path(executor.run_dir(run_id)) for run_id in runs]
    with db.session() as session:
        session.execute(update(Run).where(Run.id.in_(runs)).values(state=State.COMPLETE))
    (folders[0] / "launch" / "work" / "ab").mkdir(parents=True)
    for run_id in runs:
        assert client.delete(f"/api/workflow/{run_id}", headers=alice).status_code == 204
    assert all(folder.is_dir() for folder in folders)
    shutil.rmtree(folders[1])  # a purge that died between the folder and the row
    execution.sweep(executor, lambda _: None)
    with db.session() as session:
        assert [session.get(Run, run_id) for run_id in runs] == [None, None]
    assert not any(folder.exists() for folder in folders)


def test_the_sweep_removes_folders_whose_runs_are_gone(client, alice, db, executor):
    runs_dir = executor.settings.runs_dir
    kept = submit_over_wes(client, alice)
    long_ago = time.time() - execution.ORPHAN_MIN_AGE.total_seconds() - 60
    orphan = runs_dir / "A1b2C3d4E5f6G7"  # a run id no row has
    young = runs_dir / "Z9y8X7w6V5u4T3"  # perhaps a run being accepted right now
    other = runs_dir / "not-a-run"
    for folder in (orphan / "launch" / "work", young, other):
        folder.mkdir(parents=True)
    for folder in (orphan, other, runs_dir / kept):
        os.utime(folder, (long_ago, long_ago))
    execution.sweep(executor, lambda _: None)
    assert not orphan.exists()
    assert young.is_dir() and other.is_dir() and (runs_dir / kept).is_dir()
    # The folders are looked over now and then, not at every sweep.
    orphan.mkdir()
    os.utime(orphan, (long_ago, long_ago))
    execution.sweep(executor, lambda _: None)
    assert orphan.is_dir()


class _Unreachable(LocalBackend):
    """A cloud that does not answer: every call fails."""

    platform = "aws-batch"

    def find(self, run):
        raise ConnectionError("Could not connect to the endpoint URL")

    def poll(self, handles):
        raise ConnectionError("Could not connect to the endpoint URL")


def test_one_run_on_an_unreachable_cloud_stops_neither_the_sweep_nor_the_poll(
    client, admin, alice, db, executor
):
    config = {"region": "eu-west-1", "workDir": "s3://bucket/work"}
    far = create_compute_env(client, admin, "aws-batch", "far", {**config, "headQueue": "far"})
    no_sdk = create_compute_env(
        client, admin, "aws-batch", "no-sdk", {**config, "headQueue": "no-sdk"}
    )

    def backend_for(platform, config):
        if platform != "aws-batch":
            return LocalBackend(nextflow=str(STANDIN))
        if config["headQueue"] == "no-sdk":  # this worker host lacks the SDK
            raise MissingSDK("the workers cannot run aws-batch jobs: no module named boto3")
        return _Unreachable()

    worker = execution.Executor(db=db, settings=executor.settings, backend_for=backend_for)
    cancelled = wes_run(client, alice, far)  # cancelled while its submit was cut short
    with db.session() as session:
        transition(session, cancelled, State.INITIALIZING, "claimed")
        transition(session, cancelled, State.CANCELING, "cancelled by alice")
    time_passes(db, cancelled)
    watched = {}
    for env_id in (far, no_sdk):  # runs whose head jobs cannot be asked about
        watched[env_id] = wes_run(client, alice, env_id)
        with db.session() as session:
            transition(session, watched[env_id], State.RUNNING, "started")
            session.get(Run, watched[env_id]).backend_handle = "job-1"
    lost = submit_over_wes(client, alice, workflow_params='{"standin_task_seconds": 0.1}')

    resent: list[str] = []
    assert execution.sweep(worker, resent.append) == [lost] and resent == [lost]
    execution.submit(worker, lost)  # what the re-sent message does
    deadline = time.monotonic() + 20
    while state_of(db, lost) is not State.COMPLETE:
        assert time.monotonic() < deadline
        execution.poll_active(worker)
        time.sleep(0.2)
    assert state_of(db, cancelled) is State.CANCELING  # tried again at the next sweep
    assert {state_of(db, run_id) for run_id in watched.values()} == {State.RUNNING}


@pytest.mark.backing_independent
def test_a_local_run_s_scripts_run_around_nextflow(tmp_path):
    """Where the operator allows them: the pre-run script first (its variables reach
    Nextflow), the post-run script after, with Nextflow's exit status; one console."""
    backend = LocalBackend(nextflow=str(STANDIN))
    marker = tmp_path / "post.txt"
    run = _snapshot(
        tmp_path / "run",
        params={"standin_tasks": 1, "standin_task_seconds": 0},
        pre_run_script="echo pre-run says hello\nexport FROM_PRE=yes\n",
        post_run_script=f'echo "post $NXF_EXIT_STATUS $FROM_PRE" > {marker}\necho post-run done\n',
    )
    submission = backend.submit(run)
    deadline = time.monotonic() + 20
    while not (report := backend.poll([submission.handle])[submission.handle]).finished:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert report.status is BackendStatus.SUCCEEDED and report.exit_code == 0
    lines, _ = backend.read_log(submission.handle, None)
    assert lines[0] == "pre-run says hello" and lines[-1] == "post-run done", lines
    assert any(line.startswith("N E X T F L O W") for line in lines)
    assert marker.read_text() == "post 0 yes\n"


@pytest.mark.backing_independent
def test_a_failing_local_pre_run_script_stops_the_run(tmp_path):
    backend = LocalBackend(nextflow=str(STANDIN))
    run = _snapshot(tmp_path / "run", pre_run_script="echo no database; false\n")
    submission = backend.submit(run)
    deadline = time.monotonic() + 20
    while not (report := backend.poll([submission.handle])[submission.handle]).finished:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert report.exit_code == 71
    lines, _ = backend.read_log(submission.handle, None)
    assert lines == ["no database"]
