"""The broker (a Redis of the test's own) stops for 30 s while clients keep submitting:
every POST is still accepted, and every run is submitted once the broker is back.

The Redis is the test's own, so the scenario is the same in both of CI's passes: it runs
in the one that tests on Redis (``WES_GATEWAY_TEST_REDIS_URL`` set), on that pass's
database (PostgreSQL there), and is skipped in the other."""

from __future__ import annotations

import os
import statistics
import time

import pytest

from tests.live import Client, admin_token, execution_env, output_of, serve
from tests.reliability.deployment import ci_backing, head_job_starts
from tests.reliability.private_servers import private_redis

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("WES_GATEWAY_TEST_REDIS_URL"),
        reason="runs in the pass that tests on Redis (WES_GATEWAY_TEST_REDIS_URL set)",
    ),
]

OUTAGE_SECONDS = 30
SUBMIT_EVERY = 1.0
SLOWEST_ACCEPTABLE_POST = 5.0  # seconds: a POST must not hang on a broker that is down
UNSENT = "could not enqueue workers.tasks.submit_run"  # what the API logs then


def test_broker_down_for_thirty_seconds(tmp_path):
    with private_redis(tmp_path) as redis, ci_backing(tmp_path, prefer=()) as backing:
        env = execution_env(
            tmp_path / "data",
            **backing,
            WES_GATEWAY_BROKER_URL=redis.url,
            WES_GATEWAY_EMBEDDED_WORKER="true",
        )
        with serve(env) as (base, process):
            client = Client(base, admin_token(process))
            first = client.submit(standin_tasks=1)
            assert client.wait(first, timeout=60)[-1] == "COMPLETE"  # the broker works

            redis.stop()
            down_since = time.monotonic()
            latencies: list[float] = []
            during: list[str] = []
            while time.monotonic() - down_since < OUTAGE_SECONDS:
                sent = time.monotonic()
                during.append(client.submit(standin_tasks=1))  # asserts the 200
                latencies.append(time.monotonic() - sent)
                time.sleep(max(0.0, SUBMIT_EVERY - (time.monotonic() - sent)))
            waiting = {client.state(run_id) for run_id in during}
            redis.start()

            back_since = time.monotonic()
            submitted_after: list[float] = []
            for run_id in during:
                seen = client.wait(run_id, timeout=120)
                assert seen[-1] == "COMPLETE", (run_id, seen)
                submitted_after.append(time.monotonic() - back_since)
            # The API publishes again by itself: a new run goes out at once, not by the sweep.
            after = client.submit(standin_tasks=1)
            assert client.wait(after, timeout=60)[-1] == "COMPLETE"
            starts = {run_id: head_job_starts(env, run_id) for run_id in during}
            server_log = output_of(process)

    print(
        f"\nbroker down {OUTAGE_SECONDS}s: {len(during)} POSTs all 200, latency p50 "
        f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
        f"all {len(during)} runs complete {max(submitted_after):.1f}s after the broker returned"
    )
    assert len(during) >= OUTAGE_SECONDS / SUBMIT_EVERY / 2
    assert max(latencies) < SLOWEST_ACCEPTABLE_POST, latencies
    assert waiting == {"QUEUED"}  # nothing could reach a worker meanwhile
    unsent = {run_id for run_id in during + [after] if f"{UNSENT} for {run_id}" in server_log}
    assert unsent == set(during)  # every POST meanwhile found the broker down, and said so
    assert set(starts.values()) == {1}, starts
