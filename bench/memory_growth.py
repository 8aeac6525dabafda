"""Figure 11: the API process's resident memory over many requests. A server on a scratch
data folder with 1,000 runs answers mixed WES reads (lists, a page by token, a run, a
status, service-info) from one client; its resident memory is read after a warm-up and
again after the whole count: the difference is what the process keeps growing by."""

from __future__ import annotations

from bench.listing import Target
from bench.measure import rss_mb
from bench.results import Figure, Report
from bench.seed import seed_runs
from bench.server import WES, fresh_folder, running_gateway, throwaway_database

RUNS = 1_000
TARGET_MIB = 2.0


def measure(database_url: str | None, warmup: int, total: int) -> tuple[float, float]:
    """(resident MiB after ``warmup`` requests, after ``total``)."""
    folder = fresh_folder()
    url, drop = throwaway_database(database_url, folder)
    try:
        with running_gateway(folder, url, WES_GATEWAY_EMBEDDED_WORKER="false") as gateway:
            seed_runs(gateway.database_url, gateway.data_dir / "runs", gateway.token, RUNS)
            target = Target(f"{gateway.base}{WES}", gateway.headers, gateway.process.pid)
            target.mixed(warmup)
            warm = rss_mb(target.pid)
            target.mixed(total - warmup)
            return warm, rss_mb(target.pid)
    finally:
        drop()


def report(report: Report, databases: dict[str, str | None], warmup: int, total: int) -> None:
    for kind, url in databases.items():
        warm, end = measure(url, warmup, total)
        group = f"Memory growth ({kind})"
        report.add(Figure(group, f"API resident memory after {warmup:,} requests", "MiB", warm))
        report.add(
            Figure(
                group,
                f"growth from {warmup:,} to {total:,} mixed requests",
                "MiB",
                end - warm,
                None,
                f"≤ {TARGET_MIB:g} MiB",
                end - warm <= TARGET_MIB if not report.quick else None,
            )
        )
