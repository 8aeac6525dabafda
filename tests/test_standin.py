"""The Nextflow stand-in behaves towards its caller as `nextflow run` does."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.live import STANDIN, group_alive


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
