"""Submit → RUNNING latency on the embedded default, with the Nextflow stand-in.

Starts `wes-gateway serve` on a fresh data folder, submits runs one after another through
the WES API and times each from the POST's answer to the first status poll (every 10 ms)
that reads RUNNING. Prints p50 and p99.

    python bench/submit_to_running.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx
from gateway import ROOT, fresh_folder, running_gateway

STANDIN = ROOT / "tests" / "standin" / "nextflow"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with running_gateway(fresh_folder(), WES_GATEWAY_NEXTFLOW=str(STANDIN)) as (base_url, token):
        base = f"{base_url}/ga4gh/wes/v1"
        headers = {"Authorization": f"Bearer {token}"}
        time.sleep(3)  # let the worker and the scheduler come up
        latencies = []
        for _ in range(args.runs):
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
            ] not in ("RUNNING", "COMPLETE"):
                time.sleep(0.01)
            latencies.append(time.perf_counter() - accepted)
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        print(f"submit -> RUNNING over {len(latencies)} runs (embedded default, stand-in):")
        print(
            f"  p50 {statistics.median(latencies):.3f} s   p99 {p99:.3f} s   "
            f"max {latencies[-1]:.3f} s   target p50 <= 1.5 s"
        )


if __name__ == "__main__":
    main()
