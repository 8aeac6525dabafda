"""Figure 3: POST /runs accepted per second with 8 concurrent clients. The runs only need
to be accepted and queued: our worker is off; sapporo is measured as shipped (each run
forks its run.sh at once) and for its API alone (a run.sh that exits at once)."""

from __future__ import annotations

import json
import threading

import httpx

from bench.measure import seconds_together
from bench.results import Figure, Report
from bench.sapporo import Sapporo
from bench.sapporo import form as sapporo_form
from bench.server import WES, fresh_folder, running_gateway

CLIENTS = 8


def our_form() -> dict[str, tuple[None, str]]:
    return {
        "workflow_type": (None, "NFL"),
        "workflow_type_version": (None, "DSL2"),
        "workflow_url": (None, "nf-core/demo"),
        "workflow_params": (None, json.dumps({"input": "samplesheet.csv", "outdir": "results"})),
        "tags": (None, '{"project": "bench"}'),
    }


def accepted_per_second(url: str, headers: dict[str, str], form, total: int) -> float:
    """``total`` POSTs from CLIENTS threads, each on its own connection; runs accepted a
    second over the wall time of all of them (every answer must be 200)."""
    per_client = total // CLIENTS
    failures: list[str] = []

    def client(start: threading.Barrier) -> None:
        with httpx.Client(headers=headers, timeout=120) as http:
            http.post(url, files=form())  # warm the connection up (not counted)
            start.wait()
            for _ in range(per_client):
                response = http.post(url, files=form())
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    elapsed = seconds_together([client] * CLIENTS)
    if failures:
        raise AssertionError(f"{len(failures)} POSTs refused, first: {failures[0]}")
    return per_client * CLIENTS / elapsed


def ours(total: int, workers: int) -> float:
    with running_gateway(
        fresh_folder(), workers=workers, WES_GATEWAY_EMBEDDED_WORKER="false"
    ) as gateway:
        return accepted_per_second(f"{gateway.base}{WES}/runs", gateway.headers, our_form, total)


def report(report: Report, total: int, shipped_total: int, peer: bool) -> None:
    one, two = ours(total, 1), ours(total, 2)
    api_only = shipped = None
    if peer:
        alone = Sapporo(fresh_folder("sapporo-bench-"), api_only=True)
        with alone.running() as base:
            api_only = accepted_per_second(f"{base}/runs", {}, sapporo_form, total)
        as_shipped = Sapporo(fresh_folder("sapporo-bench-"), api_only=False)
        with as_shipped.running() as base:
            shipped = accepted_per_second(f"{base}/runs", {}, sapporo_form, shipped_total)
    group = f"Accepting runs ({CLIENTS} concurrent clients)"
    for processes, rate in ((1, one), (2, two)):
        report.add(
            Figure(
                group,
                f"POST /runs accepted, {processes} API process{'es' if processes > 1 else ''}"
                " (vs sapporo's API alone)",
                "runs/s",
                rate,
                api_only,
                "≥ 3× sapporo",
                rate >= 3 * api_only if api_only else None,
                "our worker stopped: runs are accepted and queued; sapporo with a run.sh "
                "that exits at once"
                + ("; `serve --workers 2`, one API process a core" if processes > 1 else ""),
            )
        )
    report.add(
        Figure(
            group,
            "POST /runs accepted, 1 API process (vs sapporo as shipped)",
            "runs/s",
            one,
            shipped,
            note="sapporo forks its run.sh for every accepted run (it fails fast without Docker)",
        )
    )
