"""PostgreSQL (a cluster of the test's own) restarts while clients keep calling both
APIs: calls during the outage get a 503 with the API's JSON error body, never a 500 or
a hang; the service comes back by itself; every accepted run is kept and finishes.

The cluster is the test's own (and the broker the embedded one), so that scenario is the
same in both of CI's passes: it runs in the one that tests on PostgreSQL
(``WES_GATEWAY_TEST_DATABASE_URL`` set) and is skipped in the other."""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from tests.conftest import TEST_DATABASE_ENV, submit
from tests.live import TERMINAL, Client, admin_token, free_port, separate_worker, serve
from tests.reliability.api_load import Load
from tests.reliability.deployment import (
    exit_code_on_disk,
    head_job_starts,
    registered_with_the_api,
    scaled_out_env,
    wait_until,
)
from tests.reliability.private_servers import private_postgres
from wes_gateway.http import runtime

OUTAGE_SECONDS = 5
LONGEST_CALL = 10.0  # seconds: no call may hang on a database that is down


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get(TEST_DATABASE_ENV),
    reason=f"runs in the pass that tests on PostgreSQL ({TEST_DATABASE_ENV} set)",
)
def test_postgres_restart_under_load(tmp_path):
    port = free_port()
    with private_postgres() as postgres:
        env = scaled_out_env(tmp_path / "data", port, WES_GATEWAY_DATABASE_URL=postgres.url)
        with serve(env, port=port) as (base, process), separate_worker(env, 2):
            client = Client(base, admin_token(process))
            before = [client.submit(standin_tasks=2, standin_task_seconds=3) for _ in range(4)]
            wait_until(
                lambda: all(registered_with_the_api(env, run_id) for run_id in before),
                30,
                "the first runs registered with the API",
            )
            with Load(client, before[0]) as load:
                time.sleep(1)
                postgres.stop()
                down_at = time.monotonic()
                time.sleep(OUTAGE_SECONDS)
                postgres.start()
                up_at = time.monotonic()
                wait_until(
                    lambda: any(c.at > up_at and c.status == 200 for c in load.calls[-20:]),
                    30,
                    "the API answers again",
                )
                recovered_in = time.monotonic() - up_at
                time.sleep(1)
            accepted = load.accepted
            final = {run_id: client.wait(run_id, timeout=60)[-1] for run_id in before + accepted}
            listed = {item["run_id"] for item in client.get("/runs?page_size=100").json()["runs"]}
            tasks = {run_id: client.get(f"/runs/{run_id}/tasks").json() for run_id in before}

    calls = load.calls
    during = [c for c in calls if down_at <= c.at < up_at]
    statuses = Counter(c.status for c in calls)
    print(
        f"\nPostgreSQL down {OUTAGE_SECONDS}s: {len(calls)} calls {dict(statuses)}, "
        f"{len(during)} during the outage {dict(Counter(c.status for c in during))}; "
        f"latency p50 {statistics.median(c.seconds for c in calls) * 1000:.0f} ms, max "
        f"{max(c.seconds for c in calls) * 1000:.0f} ms; answering again {recovered_in:.1f}s "
        f"after the restart; {len(accepted)} runs accepted under load, final states "
        f"{dict(Counter(final.values()))}"
    )
    assert set(statuses) <= {200, 503}, [c for c in calls if c.status not in (200, 503)][:5]
    assert max(c.seconds for c in calls) < LONGEST_CALL
    assert sum(c.status == 503 for c in during) >= 10  # the outage was seen
    for call in calls:
        if call.status == 503:
            if call.what.startswith("tower"):
                assert call.body == {"message": "the database is unavailable; try again shortly"}
            else:
                assert call.body == {
                    "msg": "the database is unavailable; try again shortly",
                    "status_code": 503,
                }
    assert listed == set(before) | set(accepted)  # nothing lost, nothing half-accepted
    assert all(final[run_id] == "COMPLETE" for run_id in before), final
    for run_id in before:  # what their head jobs reported across the outage is all there
        assert [task["exit_code"] for task in tasks[run_id]["task_logs"]] == [0, 0], run_id
    for run_id in accepted:  # each reports what its head job really did
        assert final[run_id] in TERMINAL
        code = exit_code_on_disk(env, run_id)
        assert final[run_id] == ("COMPLETE" if code == 0 else "EXECUTOR_ERROR"), (run_id, code)
    assert {head_job_starts(env, run_id) for run_id in final} == {1}


def test_a_database_lost_as_the_request_ends_does_not_break_the_answer(
    client, app, alice, monkeypatch
):
    """The outage above, pinned down: PostgreSQL goes away after a handler has read what
    it answers but before the request's session is closed. The answer is already on its
    way (live, its status and length were sent), so closing must not break it."""
    run_id = submit(client, alice)
    database = app.app.extensions["wes_gateway"].db

    def session_whose_close_fails():
        session = database.sessions()
        close = session.close

        def close_on_a_lost_database() -> None:
            close()
            raise OperationalError("ROLLBACK", {}, Exception("terminating connection"))

        session.close = close_on_a_lost_database
        return session

    # Only the request's own session (the one the teardown closes) is affected.
    serving = runtime.current

    class LosingRuntime:
        db = SimpleNamespace(sessions=session_whose_close_fails)

        def __getattr__(self, name: str):
            return getattr(serving(), name)

    monkeypatch.setattr(runtime, "current", LosingRuntime)
    response = client.get(f"/ga4gh/wes/v1/runs/{run_id}", headers=alice)
    assert response.status_code == 200
    assert response.json()["run_id"] == run_id
