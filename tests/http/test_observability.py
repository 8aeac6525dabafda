"""What an operator watches: Prometheus metrics at /metrics, readiness at /readyz, and
log lines that carry the run they are about."""

from __future__ import annotations

import json
import logging
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import WES, add_tasks, submit
from tests.domain.test_trace import run_token
from wes_gateway.http.app import create_app
from wes_gateway.infra import logs


def samples(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_runs_by_state_and_requests_by_route(client, alice):
    before = samples(client)
    run_id = submit(client, alice)
    assert client.get(f"{WES}/runs/{run_id}", headers=alice).status_code == 200
    assert client.get(f"{WES}/runs/nosuchrun", headers=alice).status_code == 404
    after = samples(client)
    assert value(after, "wes_gateway_runs", state="QUEUED") == 1
    assert value(after, "wes_gateway_runs", state="COMPLETE") == 0
    name = "wes_gateway_http_request_duration_seconds_count"
    route = "/ga4gh/wes/v1 GetRunLog"
    ok = {"route": route, "method": "GET", "status": "200"}
    missing = {**ok, "status": "404"}
    assert value(after, name, **ok) == value(before, name, **ok) + 1
    assert value(after, name, **missing) == value(before, name, **missing) + 1
    # Labels name operations, never raw paths with run ids in them.
    assert not any(run_id in str(labels) for _, labels in after)
    assert "wes_gateway_queue_depth" in {name for name, _ in after}


def test_trace_calls_and_task_records_are_counted(client, alice, db):
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
    before = samples(client)
    tasks = [
        {"taskId": n, "status": "RUNNING", "name": f"T ({n})", "process": "T"} for n in (1, 2, 3)
    ]
    response = client.put(
        f"/api/trace/{run_id}/progress", headers=headers, json={"tasks": tasks, "progress": {}}
    )
    assert response.status_code == 200, response.text
    after = samples(client)
    calls = "wes_gateway_trace_calls_total"
    assert value(after, calls, kind="progress") == value(before, calls, kind="progress") + 1
    records = "wes_gateway_trace_task_records_total"
    assert value(after, records) == value(before, records) + 3


def test_a_run_reaching_running_is_timed(client, alice, db):
    from wes_gateway.domain.states import State
    from wes_gateway.domain.transitions import transition

    run_id = submit(client, alice)
    before = samples(client)
    with db.session() as session:
        transition(session, run_id, State.INITIALIZING, "worker", allowed_from={State.QUEUED})
        transition(session, run_id, State.RUNNING, "started")
    add_tasks(db, run_id, 1)
    after = samples(client)
    count = "wes_gateway_submit_to_running_seconds_count"
    assert value(after, count) == value(before, count) + 1


def test_readyz_checks_the_database_and_the_broker(client, settings):
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["ok"] is True
    assert ready.json()["checks"]["broker"]["ok"] is True
    from starlette.testclient import TestClient

    broken = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(broken)) as other:
        response = other.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not ready" and body["checks"]["broker"]["ok"] is False
        assert "Error" in body["checks"]["broker"]["error"]
        assert other.get("/healthz").status_code == 200  # alive, just not ready


@pytest.mark.backing_independent
def test_log_lines_are_json_and_carry_the_run_id(capsys):
    logs.configure("INFO")
    try:
        with logs.about_run("3V5QcabVRPtuSM"):
            logging.getLogger("workers.execution").warning("the head job ended (%s)", "FAILED")
        logging.getLogger("wes_gateway").info("no run here", extra={"queue": "q"})
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["run_id"] == "3V5QcabVRPtuSM" and lines[0]["level"] == "WARNING"
    assert lines[0]["message"] == "the head job ended (FAILED)"
    assert re.match(r"\d{4}-\d\d-\d\dT", lines[0]["time"])
    assert "run_id" not in lines[1] and lines[1]["queue"] == "q"


@pytest.mark.backing_independent  # the embedded default
def test_serve_shows_its_worker_s_metrics_and_logs_json(tmp_path):
    import httpx
    import pytest

    from tests.live import Client, admin_token, execution_env, output_of, serve

    pytest.importorskip("prometheus_client")
    with serve(execution_env(tmp_path / "data"), kill_at_end=True) as (base, process):
        client = Client(base, admin_token(process))
        # Long enough for several poll cycles to see it running.
        run_id = client.submit(standin_tasks=1, standin_task_seconds=2)
        assert client.wait(run_id, timeout=60)[-1] == "COMPLETE"

        def scraped() -> dict:
            found = {}
            for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text):
                for sample in family.samples:
                    found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
            return found

        found = scraped()
        # Observed in the worker process, shown by the API's /metrics.
        assert value(found, "wes_gateway_submit_to_running_seconds_count") == 1
        assert value(found, "wes_gateway_poll_cycle_seconds_count", platform="local-platform") > 0
        assert value(found, "wes_gateway_trace_calls_total", kind="complete") == 1
        assert value(found, "wes_gateway_runs", state="COMPLETE") == 1
        lines = [line for line in output_of(process).splitlines() if line.startswith("{")]
        access = [json.loads(line) for line in lines if '"uvicorn.access"' in line]
        assert any(f"/ga4gh/wes/v1/runs/{run_id}/status" in entry["message"] for entry in access)
