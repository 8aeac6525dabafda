"""Submit → RUNNING latency on the embedded default, with the Nextflow stand-in.

Starts `wes-gateway serve` on a fresh data folder, submits runs one after another through
the WES API and times each from the POST's answer to the first status poll (every 10 ms)
that reads RUNNING. Prints p50 and p99.

    python bench/submit_to_running.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "tests" / "standin" / "nextflow"


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="wes-gateway-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WES_GATEWAY_")}
    env.update(WES_GATEWAY_DATA_DIR=str(data / "data"), WES_GATEWAY_NEXTFLOW=str(STANDIN))
    port = _port()
    log = open(data / "serve.log", "w+")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "wes_gateway", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/ga4gh/wes/v1"
    try:
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        log.seek(0)
        token = next(line.strip() for line in log if line.startswith("    "))
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
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
