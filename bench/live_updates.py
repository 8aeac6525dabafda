"""Figure 10: requests a watching dashboard makes on one active run, per minute, when it
follows the run's event stream and when it polls (as it did before streams; the same
page with ``wes-gateway-live=poll`` in its session storage). Headless Chromium on the run
page of a run of the Nextflow stand-in whose tasks run one after another, each for a few
seconds (a change every few seconds) or for half a minute (a quiet run); every request
to the APIs counts, the stream's own connections and tickets included."""

from __future__ import annotations

import re
import shutil

import httpx

from bench.results import Figure, Report
from bench.server import STANDIN, fresh_folder, running_gateway

API = re.compile(r"/(api|ga4gh/wes/v1)/")


def _watch(browser, base: str, token: str, mode: str, task_seconds: float, window: float):
    """API requests made by a page watching a fresh run for ``window`` seconds."""
    tasks = int(window / task_seconds) + 3
    context = browser.new_context()
    if mode == "poll":
        context.add_init_script("sessionStorage.setItem('wes-gateway-live', 'poll')")
    page = context.new_page()
    page.set_default_timeout(60_000)
    seen: list[str] = []
    page.on(
        "request", lambda request: seen.append(request.url) if API.search(request.url) else None
    )
    body = {
        "launch": {
            "pipeline": "nf-core/demo",
            "paramsText": f'{{"standin_tasks": {tasks}, "standin_task_seconds": {task_seconds}}}',
        }
    }
    headers = {"Authorization": f"Bearer {token}"}
    answer = httpx.post(f"{base}/api/workflow/launch", headers=headers, json=body, timeout=30)
    answer.raise_for_status()
    run_id = answer.json()["workflowId"]
    page.goto(base + "/")
    page.fill("#token", token)
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("h1:has-text('Runs')")
    page.goto(f"{base}/#/runs/{run_id}")
    page.locator(".status-line", has_text="RUNNING").wait_for()
    page.wait_for_timeout(2000)  # the page's first reads are not what watching costs
    start = len(seen)
    page.wait_for_timeout(window * 1000)  # (events are delivered while Playwright waits)
    count = len(seen) - start
    context.close()
    httpx.post(f"{base}/api/workflow/{run_id}/cancel", headers=headers, json={}, timeout=30)
    return count * 60.0 / window


def requests_per_minute(window: float, task_seconds: list[float]) -> dict[float, dict[str, float]]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    found: dict[float, dict[str, float]] = {}
    with (
        running_gateway(fresh_folder(), WES_GATEWAY_NEXTFLOW=str(STANDIN)) as gateway,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            for seconds in task_seconds:
                found[seconds] = {
                    mode: _watch(browser, gateway.base, gateway.token, mode, seconds, window)
                    for mode in ("poll", "events")
                }
        finally:
            browser.close()
    return found


def report(report: Report, window: float, task_seconds: list[float]) -> None:
    for seconds, counts in requests_per_minute(window, task_seconds).items():
        polling, events = counts["poll"], counts["events"]
        fewer = polling / events if events else float("inf")
        report.add(
            Figure(
                group="Live updates (dashboard on one active run, Chromium)",
                name=f"requests per minute, a task ending every {seconds:g} s",
                unit="req/min",
                ours=events,
                peer=None,
                target="10× fewer than polling",
                met=fewer >= 10,
                note=(
                    f"events {events:.1f} req/min, polling {polling:.1f} req/min "
                    f"({f'{fewer:.1f}× fewer' if events else 'none with events'}), "
                    f"over {window:g} s"
                ),
            )
        )
