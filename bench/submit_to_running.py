"""Figure 5: submit → RUNNING latency on the embedded default with the Nextflow stand-in.

A server with its worker on a scratch data folder; runs submitted one after another
through the WES API, each timed from the POST's answer to the first status poll (every
10 ms) that reads RUNNING."""

from __future__ import annotations

import json
import time

import httpx

from bench.measure import median, percentile
from bench.results import Figure, Report
from bench.server import STANDIN, WES, fresh_folder, running_gateway


def latencies(runs: int) -> list[float]:
    with running_gateway(fresh_folder(), WES_GATEWAY_NEXTFLOW=str(STANDIN)) as gateway:
        base, headers = f"{gateway.base}{WES}", gateway.headers
        measured = []
        for _ in range(runs + 1):  # the first one, not counted, waits for the worker to start
            response = httpx.post(
                f"{base}/runs",
                headers=headers,
                files={
                    "workflow_type": (None, "NFL"),
                    "workflow_type_version": (None, "DSL2"),
                    "workflow_url": (None, "nf-core/demo"),
                    "workflow_params": (None, json.dumps({"standin_tasks": 1})),
                },
            )
            accepted = time.perf_counter()
            run_id = response.json()["run_id"]
            while httpx.get(f"{base}/runs/{run_id}/status", headers=headers).json()[
                "state"
            ] not in (
                "RUNNING",
                "COMPLETE",
            ):
                time.sleep(0.01)
            measured.append(time.perf_counter() - accepted)
        return measured[1:]


def report(report: Report, runs: int) -> None:
    measured = latencies(runs)
    group = f"Submit to RUNNING (embedded default, Nextflow stand-in, {runs} runs)"
    p50 = median(measured)
    report.add(Figure(group, "submit → RUNNING p50", "s", p50, None, "≤ 1.5 s", p50 <= 1.5))
    report.add(Figure(group, "submit → RUNNING p99", "s", percentile(measured, 99)))
