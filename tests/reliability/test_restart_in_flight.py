"""Restart the API, the worker and the scheduler with 30 runs in flight (some queued,
some running, some about to fail): every run reaches its true terminal state, the one
its head job really ended in, and no head job starts twice."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.live import Client, admin_token, free_port, serve, start
from tests.reliability.deployment import (
    ci_backing,
    exit_code_on_disk,
    head_job_starts,
    registered_with_the_api,
    run_dir,
    scaled_out_env,
    start_worker,
    stop,
    wait_until,
)

pytestmark = pytest.mark.slow

RUNS = 30
STARTED = 20  # running when the worker stops; the others are accepted after that


def _submit(client: Client, expected: dict[str, str], number: int) -> str:
    """A run of two 8 s tasks (still going at the restart on a loaded machine); every
    third one fails in its second task."""
    failing = number % 3 == 0
    params = {"standin_fail": 2} if failing else {}
    run_id = client.submit(standin_tasks=2, standin_task_seconds=8, **params)
    expected[run_id] = "EXECUTOR_ERROR" if failing else "COMPLETE"
    return run_id


def _past_the_trace_create(env, run_id: str) -> bool:
    """A head job not started, ended, or registered with the API: the API may go."""
    started = (run_dir(env, run_id) / "head.pid").exists()
    ended = exit_code_on_disk(env, run_id) is not None
    return not started or ended or registered_with_the_api(env, run_id)


def test_restart_api_and_worker_with_thirty_runs_in_flight(tmp_path):
    port = free_port()
    with ci_backing(tmp_path, prefer=("redis", "rabbitmq")) as backing:
        env = scaled_out_env(tmp_path / "data", port, **backing)
        expected: dict[str, str] = {}
        with serve(env, port=port) as (base, process):
            token = admin_token(process)
            client = Client(base, token)
            helpers = [start_worker(env), start("beat", env=env)]
            try:
                running = [_submit(client, expected, number) for number in range(STARTED)]
                wait_until(
                    lambda: all(client.state(run_id) == "RUNNING" for run_id in running),
                    30,
                    "the first runs RUNNING",
                )
                for helper in helpers:
                    assert stop(helper) in (0, -15), "a worker or the scheduler failed to stop"
            finally:
                for helper in helpers:
                    helper.kill()
                    helper.wait()
            for number in range(STARTED, RUNS):  # accepted while no worker runs
                _submit(client, expected, number)
            wait_until(
                lambda: all(_past_the_trace_create(env, run_id) for run_id in expected),
                30,
                "every started head job registered",
            )
            at_restart = Counter(client.state(run_id) for run_id in expected)
            down_since = time.monotonic()  # the API stops as this block ends
        with serve(env, port=port) as (base, process):  # the address head jobs report to
            restarted_in = time.monotonic() - down_since
            client = Client(base, token)
            helpers = [start_worker(env), start("beat", env=env)]
            try:
                final = {run_id: client.wait(run_id, timeout=90)[-1] for run_id in expected}
                settled_in = time.monotonic() - down_since
                logs = {run_id: client.get(f"/runs/{run_id}").json() for run_id in expected}
            finally:
                for helper in helpers:
                    helper.kill()
                    helper.wait()

    print(
        f"\nrestart with {RUNS} runs: at the restart {dict(at_restart)}; the API was down "
        f"{restarted_in:.1f}s; every run ended {settled_in:.1f}s after the restart began: "
        f"{dict(Counter(final.values()))}"
    )
    # A restart with runs really in flight: queued, and running (some may have ended).
    assert at_restart["QUEUED"] == RUNS - STARTED, at_restart
    assert at_restart["RUNNING"] >= STARTED // 2, at_restart
    assert final == expected
    for run_id, log in logs.items():
        really = 0 if expected[run_id] == "COMPLETE" else 1  # standin_fail: exit status 1
        assert log["run_log"]["exit_code"] == exit_code_on_disk(env, run_id) == really
    starts = {run_id: head_job_starts(env, run_id) for run_id in expected}
    assert set(starts.values()) == {1}, starts
