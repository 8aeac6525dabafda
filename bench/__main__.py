"""One command for every figure: ``python -m bench [--quick] [--postgres URL]``.

Sets up what it needs (our server on scratch data folders, sapporo in its own virtual
environment under the cache folder), measures each figure a fixed number of times,
prints a table, and writes it as JSON and Markdown (``docs/benchmarks.{json,md}`` unless
``--output`` says otherwise). ``--quick`` runs every figure at small sizes in seconds
(for CI, which asserts nothing about speed).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench import (
    listing,
    live_updates,
    memory_growth,
    poll_cost,
    run_count,
    run_size,
    server,
    submit_rate,
    submit_to_running,
    trace_ingestion,
)
from bench.results import Report, describe_machine
from bench.server import ROOT

FULL = {
    "sizes": [1_000, 10_000, 100_000],
    "requests": 200,
    "mixed": 10_000,
    "posts": 800,
    "shipped_posts": 80,
    "trace_calls": 200,
    "submits": 20,
    "active": [1, 100, 1_000],
    "task_sizes": [1_000, 10_000, 100_000],
    "run_counts": [1_000, 100_000, 1_000_000],
    "count_requests": 100,
    "watch_seconds": 60.0,
    "task_seconds": [3.0, 30.0, 120.0],
    "growth_warmup": 10_000,
    "growth_requests": 100_000,
}
QUICK = {
    "sizes": [100, 300],
    "requests": 20,
    "mixed": 200,
    "posts": 40,
    "shipped_posts": 16,
    "trace_calls": 10,
    "submits": 3,
    "active": [1, 120],
    "task_sizes": [100, 300],
    "run_counts": [100, 1_000],
    "count_requests": 10,
    "watch_seconds": 10.0,
    "task_seconds": [2.0],
    "growth_warmup": 100,
    "growth_requests": 300,
}
FIGURES = ("listing", "tasks", "count", "posts", "trace", "running", "poll", "live", "growth")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("WES_GATEWAY_TEST_DATABASE_URL"),
        help="a PostgreSQL URL; each figure gets a throwaway database beside it "
        "(default: $WES_GATEWAY_TEST_DATABASE_URL; without one, SQLite only)",
    )
    parser.add_argument(
        "--no-sqlite",
        action="store_true",
        help="with --postgres, measure the figures that read a database on PostgreSQL only",
    )
    parser.add_argument("--no-peer", action="store_true", help="measure wes-gateway only")
    parser.add_argument(
        "--serve-here",
        action="store_true",
        help="serve with this Python (the default in --quick) instead of a fresh user install",
    )
    parser.add_argument("--only", default=",".join(FIGURES), help=f"some of {','.join(FIGURES)}")
    parser.add_argument(
        "--output", type=Path, default=None, help="folder for the JSON and Markdown"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    only = set(args.only.split(","))
    if args.no_sqlite and not args.postgres:
        parser.error("--no-sqlite needs --postgres (or WES_GATEWAY_TEST_DATABASE_URL)")
    databases: dict[str, str | None] = {} if args.no_sqlite else {"SQLite": None}
    if args.postgres:
        databases["PostgreSQL"] = args.postgres
    if not (args.quick or args.serve_here):
        server.server_python = server.product_install()
    report = Report(quick=args.quick, machine=describe_machine())
    peer = not args.no_peer
    analysis = ROOT / "bench" / "analysis.md"
    if not args.quick and analysis.exists():
        report.analysis = analysis.read_text()
    started = time.monotonic()
    steps = {
        "listing": (
            listing,
            lambda: listing.report(
                report, databases, plan["sizes"], plan["requests"], plan["mixed"], peer
            ),
        ),
        "tasks": (
            run_size,
            lambda: run_size.report(report, databases, plan["task_sizes"], plan["requests"]),
        ),
        "count": (
            run_count,
            lambda: run_count.report(report, databases, plan["run_counts"], plan["count_requests"]),
        ),
        "posts": (
            submit_rate,
            lambda: submit_rate.report(report, plan["posts"], plan["shipped_posts"], peer),
        ),
        "trace": (
            trace_ingestion,
            lambda: trace_ingestion.report(report, databases, plan["trace_calls"]),
        ),
        "running": (submit_to_running, lambda: submit_to_running.report(report, plan["submits"])),
        "poll": (poll_cost, lambda: poll_cost.report(report, plan["active"])),
        "live": (
            live_updates,
            lambda: live_updates.report(report, plan["watch_seconds"], plan["task_seconds"]),
        ),
        "growth": (
            memory_growth,
            lambda: memory_growth.report(
                report, databases, plan["growth_warmup"], plan["growth_requests"]
            ),
        ),
    }
    for name in FIGURES:
        if name in only:
            module, measure = steps[name]
            report.methods.append(module.__doc__ or "")
            measure()
    output = args.output or (ROOT / "docs")
    as_json, as_markdown = report.write(output)
    elapsed = time.monotonic() - started
    print(f"\n{len(report.figures)} figures in {elapsed:.0f} s: {as_json}, {as_markdown}")


if __name__ == "__main__":
    main()
