"""A head job killed without a word (SIGKILL of its whole process group: no exit code
written, no ``complete`` trace call): the run leaves RUNNING by itself, in a bounded
time, and says why."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.live import TERMINAL, Client, admin_token, free_port, group_alive, separate_worker, serve
from tests.reliability.deployment import (
    ci_backing,
    exit_code_on_disk,
    run_dir,
    scaled_out_env,
    wait_until,
)

pytestmark = pytest.mark.slow

NOTICED_WITHIN = 15.0  # seconds; the poll runs every 0.3 s here


def test_a_head_job_killed_without_a_word_does_not_stay_running(tmp_path):
    port = free_port()
    with ci_backing(tmp_path) as backing:
        env = scaled_out_env(tmp_path / "data", port, **backing)
        with serve(env, port=port) as (base, process), separate_worker(env, 2):
            client = Client(base, admin_token(process))
            run_id = client.submit(standin_hang="true", standin_tasks=2, standin_task_seconds=0.2)
            client.wait(run_id, {"RUNNING"}, timeout=30)
            console = run_dir(env, run_id) / f"nf-{run_id}.txt"
            wait_until(
                lambda: "STANDIN_TASK (2)" in console.read_text(errors="replace"),
                30,
                "the last task running",
            )
            head = int((run_dir(env, run_id) / "head.pid").read_text())
            os.killpg(head, signal.SIGKILL)
            killed_at = time.monotonic()
            wait_until(lambda: not group_alive(head), 10, "the head job's processes gone")
            seen = client.wait(run_id, TERMINAL | {"UNKNOWN"}, timeout=NOTICED_WITHIN)
            noticed_in = time.monotonic() - killed_at
            log = client.get(f"/runs/{run_id}").json()
            time.sleep(1)  # a late poll or sweep must not bring it back
            later = client.state(run_id)

    print(f"\nhead job SIGKILLed: {' -> '.join(seen)} after {noticed_in:.1f}s")
    assert seen[-1] == "SYSTEM_ERROR", seen
    assert later == "SYSTEM_ERROR"
    assert exit_code_on_disk(env, run_id) is None  # it really died without a word
    assert any(
        f"the head job (pid {head}) ended without reporting an exit code" in line
        for line in log["run_log"]["system_logs"]
    ), log["run_log"]
    assert log["run_log"]["end_time"]
