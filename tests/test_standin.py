"""The Nextflow stand-in behaves towards its caller as `nextflow run` does."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.live import STANDIN, free_port, group_alive

pytestmark = pytest.mark.backing_independent  # the stand-in alone, no gateway


def _run(tmp_path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STANDIN), *args], cwd=tmp_path, capture_output=True, text=True, timeout=timeout
    )


def test_version(tmp_path):
    result = _run(tmp_path, "-version")
    assert result.returncode == 0
    assert "version 24.10.4 build" in result.stdout


def test_a_run_prints_like_nextflow_and_leaves_its_files(tmp_path):
    result = _run(
        tmp_path,
        "-log",
        "nf.log",
        "run",
        "nf-core/demo",
        "-r",
        "1.2.0",
        "-name",
        "happy_turing",
        "--standin_tasks",
        "2",
        "-ansi-log",
        "false",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "N E X T F L O W  ~  version 24.10.4"
    assert lines[2].startswith("Launching `nf-core/demo` [happy_turing] DSL2 - revision: ")
    assert lines[2].endswith("[1.2.0]")
    submitted = [line for line in lines if "Submitted process >" in line]
    assert len(submitted) == 2 and submitted[0].endswith("STANDIN_TASK (1)")
    assert lines[-1] == "Succeeded   : 2"
    assert "Execution complete" in (tmp_path / "nf.log").read_text()
    outs = sorted((tmp_path / "work").glob("*/*/.command.out"))
    assert len(outs) == 2
    task_dir = outs[0].parent
    for name in (".command.sh", ".command.err", ".command.log", ".exitcode"):
        assert (task_dir / name).exists()


def test_params_file_and_a_failing_task(tmp_path):
    (tmp_path / "params.json").write_text(json.dumps({"standin_fail": 2}))
    result = _run(tmp_path, "run", "nf-core/demo", "-params-file", "params.json")
    assert result.returncode == 1
    assert "ERROR ~ Error executing process > 'STANDIN_TASK (2)'" in result.stdout
    assert "STANDIN_TASK (3)" not in result.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "nf-core/demo", "-bogus"], "Unknown option: -bogus"),
        (["-x", "run", "nf-core/demo"], "Unknown option: -x"),
        (["run"], "No project name was specified"),
        (["run", "nf-core/demo", "-r"], "Missing value for option: -r"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, args, message):
    result = _run(tmp_path, *args)
    assert result.returncode == 1
    assert message in result.stderr


def test_missing_local_script(tmp_path):
    result = _run(tmp_path, "run", "./main.nf")
    assert result.returncode == 1
    assert "Cannot find script file: ./main.nf" in result.stdout


def test_sigterm_stops_the_tasks_and_exits_non_zero(tmp_path):
    process = subprocess.Popen(
        [str(STANDIN), "run", "nf-core/demo", "--standin_hang", "true"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    seen = []
    while not any("STANDIN_TASK (3)" in line for line in seen):
        assert time.monotonic() < deadline
        seen.append(process.stdout.readline())
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 128 + signal.SIGTERM
    assert "WARN: Killing running tasks (1)" in process.stdout.read()
    deadline = time.monotonic() + 10
    while group_alive(process.pid):  # the hanging task went with it
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_crash_exit_code(tmp_path):
    assert _run(tmp_path, "run", "nf-core/demo", "--standin_exit", "3").returncode == 3


class _Recorder(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, dict, dict]] = []
    reply_create: tuple[int, dict] = (200, {"workflowId": "3V5QcabVRPtuSM"})

    def _handle(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        type(self).calls.append((self.command, self.path, dict(self.headers), body))
        status, reply = (200, {"status": "OK", "workflowId": "3V5QcabVRPtuSM"})
        if self.path.startswith("/api/trace/create"):
            status, reply = type(self).reply_create
        if "/heartbeat" in self.path:
            reply = {"message": "OK"}
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PUT = _handle

    def log_message(self, *args):
        pass


@pytest.fixture
def tower_server():
    _Recorder.calls = []
    _Recorder.reply_create = (200, {"workflowId": "3V5QcabVRPtuSM"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api", _Recorder
    server.shutdown()


def _tower_run(tmp_path, endpoint, *extra, env=None):
    return subprocess.run(
        [str(STANDIN), "run", "nf-core/demo", "-with-tower", endpoint, *extra],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "TOWER_ACCESS_TOKEN": PAT,
            "TOWER_WORKFLOW_ID": "3V5QcabVRPtuSM",
            **(env or {}),
        },
    )


PAT = base64.b64encode(b'{"tid":"abc"}.0123456789abcdef').decode()


def test_with_tower_makes_nextflow_s_calls(tmp_path, tower_server):
    endpoint, recorder = tower_server
    result = _tower_run(tmp_path, endpoint, "--standin_tasks", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    paths = [(method, path) for method, path, _, _ in recorder.calls]
    assert paths[0] == ("POST", "/api/trace/create")
    assert paths[1] == ("PUT", "/api/trace/3V5QcabVRPtuSM/begin")
    assert paths[-1] == ("PUT", "/api/trace/3V5QcabVRPtuSM/complete")
    assert ("PUT", "/api/trace/3V5QcabVRPtuSM/progress") in paths
    _, _, headers, create = recorder.calls[0]
    assert headers["Authorization"] == f"Bearer {PAT}"
    assert headers["User-Agent"] == "Nextflow/24.10.4"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Traceparent"].startswith("00-")
    assert set(create) == {
        "sessionId",
        "runName",
        "projectName",
        "repository",
        "workflowId",
        "instant",
    }
    assert create["workflowId"] == "3V5QcabVRPtuSM"
    begin = recorder.calls[1][3]
    assert begin["towerLaunch"] is True and begin["processNames"] == ["STANDIN_TASK"]
    assert begin["workflow"]["sessionId"] == create["sessionId"]
    tasks = {
        t["taskId"]: t
        for _, path, _, body in recorder.calls
        if path.endswith("/progress")
        for t in body["tasks"]
    }
    assert sorted(tasks) == [1, 2, 3]
    assert all(t["status"] == "COMPLETED" and t["exit"] == 0 for t in tasks.values())
    complete = recorder.calls[-1][3]
    assert complete["workflow"]["success"] is True and complete["workflow"]["exitStatus"] == 0
    assert complete["workflow"]["stats"]["succeedCount"] == 3
    assert complete["metrics"][0]["process"] == "STANDIN_TASK"


def test_legacy_token_goes_as_basic(tmp_path, tower_server):
    endpoint, recorder = tower_server
    legacy = "4ffbf1009ebabea77db3d72efefa836dfbb71271"
    result = _tower_run(tmp_path, endpoint, env={"TOWER_ACCESS_TOKEN": legacy})
    assert result.returncode == 0
    assert recorder.calls[0][2]["Authorization"] == (
        "Basic QHRva2VuOjRmZmJmMTAwOWViYWJlYTc3ZGIzZDcyZWZlZmE4MzZkZmJiNzEyNzE="
    )


def test_a_refused_create_aborts_the_run(tmp_path, tower_server):
    endpoint, recorder = tower_server
    recorder.reply_create = (400, {"message": "Unknown workflow launch id=3V5QcabVRPtuSM"})
    result = _tower_run(tmp_path, endpoint)
    assert result.returncode == 1
    # Before 25.04 the create call's AbortOperationException reaches Nextflow's Launcher,
    # which prints the reason (the error body's message) alone on stderr.
    assert result.stderr == "Unknown workflow launch id=3V5QcabVRPtuSM\n"
    assert [path for _, path, _, _ in recorder.calls] == ["/api/trace/create"]
    assert not (tmp_path / "work").exists()


def test_an_unreachable_endpoint_aborts_the_run_as_nextflow_does(tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = _tower_run(tmp_path, f"{nowhere}/api")
    assert result.returncode == 1
    assert result.stderr == f"Unable to connect to Seqera Platform API: {nowhere}\n"
    assert "ERROR" not in result.stdout
    assert result.stdout.splitlines()[2].startswith("Launching `nf-core/demo`")
    assert not (tmp_path / "work").exists()


def test_from_26_04_an_unreachable_endpoint_is_an_error_block(tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = _tower_run(tmp_path, f"{nowhere}/api", env={"STANDIN_NEXTFLOW_VERSION": "26.04.0"})
    assert result.returncode == 1
    block = result.stdout.split("\n\n", 2)[2]
    assert block == (
        "ERROR ~ Abort exception produced when notifying an event - Unexpected HTTP response\n"
        f"- endpoint    : {nowhere}/api/trace/create\n"
        "- status code : 0\n"
        f"- response msg: Unable to connect to Seqera Platform API: {nowhere}\n"
        "\n\n"
        " -- Check '.nextflow.log' file for details\n"
    )
    assert not (tmp_path / "work").exists()


def test_from_25_04_to_26_03_an_unreachable_endpoint_is_only_logged(tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = _tower_run(tmp_path, f"{nowhere}/api", env={"STANDIN_NEXTFLOW_VERSION": "25.10.0"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Unable to connect" not in result.stdout + result.stderr
    assert "Unable to connect to Seqera Platform API" in (tmp_path / ".nextflow.log").read_text()
    assert result.stdout.splitlines()[-1] == "Succeeded   : 3"


def test_a_missing_token_aborts_before_any_call(tmp_path, tower_server):
    endpoint, recorder = tower_server
    env = {k: v for k, v in os.environ.items() if k != "TOWER_ACCESS_TOKEN"}
    result = subprocess.run(
        [str(STANDIN), "run", "nf-core/demo", "-with-tower", endpoint],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 1
    assert "access token is required" in result.stdout
    assert recorder.calls == []


def test_failure_and_heartbeat_reach_the_endpoint(tmp_path, tower_server):
    endpoint, recorder = tower_server
    result = _tower_run(
        tmp_path,
        endpoint,
        "--standin_fail",
        "1",
        "--standin_task_seconds",
        "3",
        env={"STANDIN_TOWER_ALIVE_INTERVAL": "0.5"},
    )
    assert result.returncode == 1
    paths = [path for _, path, _, _ in recorder.calls]
    assert "/api/trace/3V5QcabVRPtuSM/heartbeat" in paths
    complete = recorder.calls[-1][3]["workflow"]
    assert complete["success"] is False and complete["exitStatus"] == 1
    assert "error exit status" in complete["errorMessage"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-name", "My-run-"],
            "Not a valid run name: `My-run-` -- It must match the pattern "
            r"^[a-z](?:[a-z\d]|[-_](?=[a-z\d])){0,79}$",
        ),
        (["-name", "last"], "Not a valid run name: `last`"),
        (["-name", "a" * 81], None),
        (
            ["-resume", "0f1c3a52-8c1e-4f0e-9d7a-2b3c4d5e6f70"],
            "Can't find a run with the specified id: 0f1c3a52-8c1e-4f0e-9d7a-2b3c4d5e6f70 -- "
            "Execution can't be resumed",
        ),
    ],
)
def test_what_nextflow_refuses_the_stand_in_refuses(tmp_path, args, message):
    done = _run(tmp_path, "run", "nf-core/demo", *args)
    assert done.returncode == 1
    if message:
        assert done.stderr.strip() == message
    assert not (tmp_path / "work").exists()


def test_a_revision_with_a_local_script_is_refused(tmp_path):
    (tmp_path / "main.nf").write_text("workflow {}\n")
    done = _run(tmp_path, "run", "./main.nf", "-r", "main")
    assert done.returncode == 1
    assert done.stderr.strip() == "Revision option cannot be used when running a local script"


def test_without_history_a_run_needs_a_name(tmp_path):
    env = {**os.environ, "NXF_IGNORE_RESUME_HISTORY": "true"}
    args = [str(STANDIN), "run", "nf-core/demo", "--standin_tasks", "1"]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 1 and done.stderr.strip() == "Missing workflow run name"
    named = subprocess.run([*args, "-name", "nf-x1"], cwd=tmp_path, capture_output=True, env=env)
    assert named.returncode == 0
    assert not (tmp_path / ".nextflow" / "history").exists()


def test_history_cache_and_resume_as_nextflow_keeps_them(tmp_path):
    failed = _run(tmp_path, "run", "nf-core/demo", "-name", "first", "--standin_tasks", "3",
                  "--standin_fail", "2", "--standin_task_seconds", "0")  # fmt: skip
    assert failed.returncode == 1
    (record,) = (tmp_path / ".nextflow" / "history").read_text().splitlines()
    stamp, duration, name, status, revision, session, command = record.split("\t")
    assert (name, status) == ("first", "ERR") and duration.endswith("s")
    assert command.startswith("nextflow run nf-core/demo -name first")
    assert (tmp_path / ".nextflow" / "cache" / session / "db").is_dir()
    assert (tmp_path / ".nextflow" / "cache" / session / "index.first").is_file()
    again = _run(tmp_path, "run", "nf-core/demo", "-name", "first")
    assert again.returncode == 1
    assert (
        again.stderr.strip() == "Run name `first` has been already used -- Specify a different one"
    )
    resumed = _run(tmp_path, "run", "nf-core/demo", "-resume", session, "--standin_tasks", "3",
                   "--standin_task_seconds", "0")  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Cached process > STANDIN_TASK (1)" in resumed.stdout
    assert "Submitted process > STANDIN_TASK (2)" in resumed.stdout
    assert "Cached      : 1" in resumed.stdout and "Succeeded   : 2" in resumed.stdout
    records = (tmp_path / ".nextflow" / "history").read_text().splitlines()
    assert [line.split("\t")[5] for line in records] == [session, session]
    assert records[1].split("\t")[3] == "OK"


def test_a_session_in_use_is_locked(tmp_path):
    first = subprocess.Popen(
        [str(STANDIN), "run", "nf-core/demo", "-name", "holder", "--standin_tasks", "1",
         "--standin_hang", "true"],
        cwd=tmp_path, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        history = tmp_path / ".nextflow" / "history"
        while not (history.exists() and history.read_text()) or not (tmp_path / "work").exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        session = history.read_text().split("\t")[5]
        second = _run(tmp_path, "run", "nf-core/demo", "-resume", session)
        assert second.returncode == 1
        assert f"ERROR ~ Unable to acquire lock on session with ID {session}" in second.stdout
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=20)


def test_nxf_ver_picks_the_version_it_runs_as(tmp_path):
    env = {**os.environ, "NXF_VER": "23.10.1"}
    done = subprocess.run(
        [str(STANDIN), "run", "nf-core/demo", "--standin_tasks", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "N E X T F L O W  ~  version 23.10.1"
    env["NXF_VER"] = "newest"  # no release has that name: the launcher cannot fetch it
    done = subprocess.run(
        [str(STANDIN), "run", "nf-core/demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert done.returncode == 1
    assert "Cannot download nextflow required runtime" in done.stderr


def test_reports_are_written_under_the_name_given_or_nextflow_s_default(tmp_path):
    done = _run(
        tmp_path,
        "run",
        "nf-core/demo",
        "-with-report",
        "mine.html",
        "-with-trace",
        "-with-dag",
        "-ansi-log",
        "false",
        "--standin_tasks",
        "2",
    )
    assert done.returncode == 0, done.stderr
    assert "2 tasks" in (tmp_path / "mine.html").read_text()
    (trace,) = tmp_path.glob("trace-*.txt")
    rows = trace.read_text().splitlines()
    assert rows[0].startswith("task_id\thash") and len(rows) == 3
    assert len(list(tmp_path.glob("dag-*.html"))) == 1


def test_preview_runs_no_task(tmp_path):
    done = _run(tmp_path, "run", "nf-core/demo", "-preview", "-dump-hashes")
    assert done.returncode == 0, done.stderr
    assert "* PREVIEW * nf-core/demo" in done.stdout
    assert "Submitted process" not in done.stdout


@pytest.mark.parametrize("mode", ["copy", "symlink", "rellink", "link"])
def test_outputs_are_published_into_the_outdir_as_publish_dir_does(tmp_path, mode):
    result = _run(
        tmp_path,
        "run",
        "nf-core/demo",
        "--standin_tasks",
        "2",
        "--standin_task_seconds",
        "0",
        "--outdir",
        "results",
        "--publish_dir_mode",
        mode,
    )
    assert result.returncode == 0, result.stdout
    published = sorted((tmp_path / "results" / "standin").iterdir())
    assert [path.name for path in published] == ["standin_1.txt", "standin_2.txt"]
    assert published[0].read_text() == "published by task 1\n"
    (source,) = (tmp_path / "work").glob("*/*/standin_1.txt")
    if mode == "copy":
        assert not published[0].is_symlink() and published[0].stat().st_ino != source.stat().st_ino
    elif mode == "link":
        assert published[0].stat().st_ino == source.stat().st_ino
    else:
        target = os.readlink(published[0])
        assert os.path.isabs(target) == (mode == "symlink")
        assert published[0].resolve() == source.resolve()


def test_a_failed_task_publishes_nothing_and_an_unknown_mode_is_refused(tmp_path):
    failed = _run(tmp_path, "run", "x/y", "--outdir", "out", "--standin_fail", "1")
    assert failed.returncode == 1
    assert not (tmp_path / "out" / "standin" / "standin_1.txt").exists()
    odd = _run(tmp_path, "run", "x/y", "--outdir", "out", "--publish_dir_mode", "teleport")
    assert odd.returncode == 1 and "PublishDir.Mode.TELEPORT" in odd.stdout


def test_a_run_without_outdir_publishes_nothing(tmp_path):
    assert _run(tmp_path, "run", "x/y", "--standin_task_seconds", "0").returncode == 0
    assert list((tmp_path / "work").glob("*/*/standin_*.txt")) == []
