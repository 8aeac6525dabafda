"""The dashboard follows a run by its event stream: it updates by itself while making
next to no requests, where the polling pages made several every few seconds. In real
Chromium against `wes-gateway serve` with the Nextflow stand-in (see test_dashboard)."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.http.test_dashboard import (  # noqa: F401 - fixtures
    browser,
    gateway,
    launch_from_form,
    page,
    sign_in,
)

pytestmark = pytest.mark.backing_independent  # its own gateway on the embedded default

API = re.compile(r"/(api|ga4gh/wes/v1)/")
IDLE_SECONDS = 6


def _watch_requests(tab) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    tab.on(
        "request",
        lambda request: (
            seen.append((request.resource_type, request.url)) if API.search(request.url) else None
        ),
    )
    return seen


def _calls_while_idle(tab, seen) -> list[str]:
    """The API calls (not counting an open event stream) in IDLE_SECONDS while the run's
    one long task runs and nothing changes."""
    tab.locator(".progress-row").first.locator(".counts").filter(has_text="1 running").wait_for()
    tab.wait_for_timeout(3500)  # what the task's start brought is read (at most every 3 s)
    start = len(seen)
    tab.wait_for_timeout(IDLE_SECONDS * 1000)
    return [url for kind, url in seen[start:] if kind != "eventsource"]


def test_the_run_page_updates_from_its_stream_without_polling(page, gateway, browser):  # noqa: F811
    seen = _watch_requests(page)
    sign_in(page, gateway)
    run_id = launch_from_form(page, standin_tasks=1, standin_task_seconds=16)
    live_calls = _calls_while_idle(page, seen)
    # The page still updates by itself: the task ends, then the run.
    counts = page.locator(".progress-row").first.locator(".counts")
    counts.filter(has_text="1 succeeded").wait_for()
    page.locator(".status-line", has_text="SUCCEEDED").wait_for()
    page.locator("table.tasks", has_text="COMPLETED").wait_for()
    page.locator(".console", has_text="Succeeded   : 1").wait_for()
    streams = [url for kind, url in seen if kind == "eventsource"]
    assert any(f"/api/workflow/{run_id}/events?ticket=" in url for url in streams), streams
    # The API token is in no URL (the stream's ticket is, and it opens that stream only).
    assert not any(gateway["admin"] in url for _, url in seen)

    # The same page, polling as before streams, makes several calls in the same while.
    context = browser.new_context()
    context.add_init_script("sessionStorage.setItem('wes-gateway-live', 'poll')")
    polling = context.new_page()
    polling.set_default_timeout(30_000)
    polled = _watch_requests(polling)
    sign_in(polling, gateway)
    launch_from_form(polling, standin_tasks=1, standin_task_seconds=16)
    poll_calls = _calls_while_idle(polling, polled)
    assert not [url for kind, url in polled if kind == "eventsource"]
    context.close()

    print(
        f"\nAPI calls in {IDLE_SECONDS} s of a running run: events {len(live_calls)}, "
        f"polling {len(poll_calls)}"
    )
    assert len(live_calls) <= 1, live_calls
    assert len(poll_calls) >= 3, poll_calls


def test_the_runs_list_shows_a_new_run_from_its_stream(page, gateway):  # noqa: F811
    seen = _watch_requests(page)
    sign_in(page, gateway)
    # A run made elsewhere (here, over the API) appears in the open list by itself.
    started = time.monotonic()
    body = {"launch": {"pipeline": "nf-core/demo", "paramsText": '{"standin_tasks": 1}'}}
    answer = httpx.post(
        f"{gateway['base']}/api/workflow/launch",
        headers={"Authorization": f"Bearer {gateway['admin']}"},
        json=body,
    )
    assert answer.status_code == 200, answer.text
    run_id = answer.json()["workflowId"]
    page.locator(f"a[href='#/runs/{run_id}']").wait_for()
    assert time.monotonic() - started < 10
    assert any(
        kind == "eventsource" and "/api/workflow-events?ticket=" in url for kind, url in seen
    )


def test_a_busy_runs_page_takes_its_task_rows_and_console_from_the_stream(page, gateway):  # noqa: F811
    """Tasks ending every two seconds: the page's task rows, their count and its console
    follow them from the events alone, without one API call."""
    seen = _watch_requests(page)
    sign_in(page, gateway)
    run_id = launch_from_form(page, standin_tasks=8, standin_task_seconds=2)
    table = page.locator("table.tasks tbody")
    console = page.locator(".console")

    def row(number: int):
        return table.locator("tr", has=page.locator("td", has_text=f"STANDIN_TASK ({number})"))

    row(1).filter(has_text="RUNNING").wait_for()
    # The page has read what it shows and opened its stream; from here it only listens.
    while not any(kind == "eventsource" for kind, _ in seen):
        page.wait_for_timeout(200)
    page.wait_for_timeout(1500)
    start = len(seen)
    row(5).wait_for()
    row(4).filter(has_text="COMPLETED").wait_for()
    console.filter(has_text="Submitted process > STANDIN_TASK (5)").wait_for()
    page.locator(".pager", has_text="of 5").wait_for()  # the count came with the rows
    calls = [url for kind, url in seen[start:] if kind != "eventsource"]
    shown = [table.locator("tr").nth(n).locator("td").first.inner_text() for n in range(4)]
    statuses = [row(n).locator("td").nth(3).inner_text() for n in range(1, 5)]
    assert calls == [], calls
    assert shown == ["1", "2", "3", "4"]
    assert statuses == ["COMPLETED"] * 4
    # What the page shows is what the tasks list answers.
    listed = httpx.get(
        f"{gateway['base']}/api/workflow/{run_id}/tasks",
        headers={"Authorization": f"Bearer {gateway['admin']}"},
    ).json()["tasks"]
    assert [item["task"]["status"] for item in listed[:4]] == ["COMPLETED"] * 4
    # And the run still ends on the page by itself.
    page.locator(".status-line", has_text="SUCCEEDED").wait_for()
    row(8).filter(has_text="COMPLETED").wait_for()
    page.locator(".pager", has_text="1–8 of 8").wait_for()
