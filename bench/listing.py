"""Figures 1, 2 and 6: listing runs as the run count grows, single-run reads and
service-info at the largest size, and the API's resident memory after mixed requests."""

from __future__ import annotations

import itertools
import time

import httpx

from bench.measure import median, percentile, request_times, rss_mb
from bench.results import Figure, Report
from bench.sapporo import Sapporo
from bench.seed import seed_runs
from bench.server import WES, fresh_folder, running_gateway, throwaway_database

LIST = "/runs?page_size=100"


def _size(count: int) -> str:
    return f"{count // 1000}k" if count >= 1000 and count % 1000 == 0 else str(count)


class Target:
    """One server under measurement: ours on one database, or sapporo."""

    def __init__(self, base: str, headers: dict[str, str], pid: int) -> None:
        self.client = httpx.Client(base_url=base, headers=headers, timeout=60)
        self.pid = pid

    def list_times(self, count: int) -> list[float]:
        return request_times(self.client, LIST, count, check=_full_page)

    def run_ids(self) -> list[str]:
        return [run["run_id"] for run in self.client.get(LIST).json()["runs"]]

    def mixed(self, count: int) -> None:
        """``count`` requests of the kinds a dashboard and WES clients send, in turn."""
        ids = itertools.cycle(self.run_ids())
        token = self.client.get(LIST).json()["next_page_token"]
        kinds = itertools.cycle(
            [
                lambda: LIST,
                lambda: f"{LIST}&page_token={token}",
                lambda: f"/runs/{next(ids)}",
                lambda: f"/runs/{next(ids)}/status",
                lambda: "/service-info",
            ]
        )
        for _ in range(count):
            self.client.get(next(kinds)()).raise_for_status()


def _full_page(response: httpx.Response) -> None:
    runs = response.json()["runs"]
    assert len(runs) >= 1, "an empty page"


def measure_sapporo(sizes: list[int], requests: int, mixed: int) -> dict:
    """sapporo's figures at each size: {size: {"p50", "p99", "info"}} plus lookups and RSS."""
    figures: dict = {"list": {}}
    peer = Sapporo(fresh_folder("sapporo-bench-"), api_only=False)
    with peer.running() as base:
        target = Target(base, {}, peer.process.pid)
        for size in sizes:
            peer.seed(size)  # its own index sync, beside the running server
            _measure_size(target, figures, size, requests)
        figures["lookups"] = _lookups(target, requests)
        target.mixed(mixed)
        figures["rss"] = rss_mb(target.pid)
    return figures


def _measure_size(target: Target, figures: dict, size: int, requests: int) -> None:
    times = target.list_times(requests)
    _wait_for_count(target, size)
    info = request_times(target.client, "/service-info", requests)
    figures["list"][size] = {
        "p50": median(times),
        "p99": percentile(times, 99),
        "info": median(info),
    }


def _wait_for_count(target: Target, size: int) -> None:
    """Until service-info counts every seeded run (its counts may be a few seconds old)."""
    deadline = time.monotonic() + 30
    while True:
        counts = target.client.get("/service-info").json()["system_state_counts"]
        if sum(counts.values()) >= size:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"service-info counts {sum(counts.values())} runs of {size}")
        time.sleep(0.2)


def _lookups(target: Target, requests: int) -> dict[str, float]:
    run_id = target.run_ids()[37]
    return {
        "run": median(request_times(target.client, f"/runs/{run_id}", requests)),
        "status": median(request_times(target.client, f"/runs/{run_id}/status", requests)),
        "info": median(request_times(target.client, "/service-info", requests)),
    }


def measure_ours(database_url: str | None, sizes: list[int], requests: int, mixed: int) -> dict:
    figures: dict = {"list": {}, "seconds_per_1k_seeded": []}
    folder = fresh_folder()
    database_url, drop = throwaway_database(database_url, folder)
    try:
        with running_gateway(folder, database_url, WES_GATEWAY_EMBEDDED_WORKER="false") as gateway:
            target = Target(f"{gateway.base}{WES}", gateway.headers, gateway.process.pid)
            seeded = 0
            for size in sizes:
                seconds = seed_runs(
                    gateway.database_url, gateway.data_dir / "runs", gateway.token, size - seeded
                )
                figures["seconds_per_1k_seeded"].append(seconds / (size - seeded) * 1000)
                seeded = size
                _measure_size(target, figures, size, requests)
            figures["lookups"] = _lookups(target, requests)
            target.mixed(mixed)
            figures["rss"] = rss_mb(target.pid)
    finally:
        drop()
    return figures


def report(
    report: Report,
    databases: dict[str, str | None],
    sizes: list[int],
    requests: int,
    mixed: int,
    peer: bool,
) -> None:
    theirs = measure_sapporo(sizes, requests, mixed) if peer else None
    largest, smallest = _size(sizes[-1]), _size(sizes[0])
    for kind, url in databases.items():
        ours = measure_ours(url, sizes, requests, mixed)
        group = f"Listing runs ({kind})"
        for size in sizes:
            mine, their = ours["list"][size], theirs["list"][size] if theirs else None
            for stat in ("p50", "p99"):
                peer_value = their[stat] if their else None
                report.add(
                    Figure(
                        group,
                        f"GET /runs?page_size=100 {stat}, {_size(size)} runs",
                        "ms",
                        mine[stat],
                        peer_value,
                        "≤ ½ sapporo",
                        mine[stat] <= peer_value / 2 if peer_value else None,
                    )
                )
        growth = ours["list"][sizes[-1]]["p50"] / ours["list"][sizes[0]]["p50"]
        their_growth = (
            theirs["list"][sizes[-1]]["p50"] / theirs["list"][sizes[0]]["p50"] if theirs else None
        )
        report.add(
            Figure(
                group,
                f"list p50 {largest} ÷ {smallest}",
                "×",
                growth,
                their_growth,
                "≤ 1.2",
                growth <= 1.2,
            )
        )
        info_growth = ours["list"][sizes[-1]]["info"] / ours["list"][sizes[0]]["info"]
        report.add(
            Figure(
                group,
                f"service-info p50 {largest} ÷ {smallest}",
                "×",
                info_growth,
                theirs["list"][sizes[-1]]["info"] / theirs["list"][sizes[0]]["info"]
                if theirs
                else None,
                "≤ 1.2 (no scan of all runs)",
                info_growth <= 1.2,
            )
        )
        group = f"Reading one run at {largest} runs ({kind})"
        for key, name in (
            ("run", "GET /runs/{id}"),
            ("status", "GET /runs/{id}/status"),
            ("info", "GET /service-info"),
        ):
            report.add(
                Figure(
                    group,
                    f"{name} p50",
                    "ms",
                    ours["lookups"][key],
                    theirs["lookups"][key] if theirs else None,
                )
            )
        report.add(
            Figure(
                f"Memory ({kind})",
                f"API resident memory after {mixed:,} mixed requests at {largest} runs",
                "MiB",
                ours["rss"],
                theirs["rss"] if theirs else None,
                "≤ sapporo",
                ours["rss"] <= theirs["rss"] if theirs else None,
            )
        )
        report.add(
            Figure(
                f"Listing runs ({kind})",
                "seeding through the run service",
                "s per 1k",
                sum(ours["seconds_per_1k_seeded"]) / len(ours["seconds_per_1k_seeded"]),
            )
        )
