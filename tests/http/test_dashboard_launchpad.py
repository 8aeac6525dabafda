"""The dashboard's launchpad and labels in a real headless Chromium (the fixtures of
test_dashboard.py): a pipeline saved from the launchpad page, launched from its card
with the form filled from its saved launch and a field changed, and the run labelled
and found again by its label."""

from __future__ import annotations

import json

import httpx
import pytest

# Skips, saying why, where Chromium or Playwright is missing (test_dashboard does).
from tests.http.test_dashboard import browser, gateway, page, shot, sign_in  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.backing_independent]  # the embedded default


def test_save_a_pipeline_launch_it_from_its_card_and_label_the_run(page, gateway):  # noqa: F811
    sign_in(page, gateway)
    page.click("nav >> text=Launchpad")
    page.locator("h1", has_text="Launchpad").wait_for()
    page.fill("#new-name", "demo-pad")
    page.fill("#new-pipeline", "nf-core/demo")
    page.fill("#new-params", json.dumps({"standin_tasks": 1, "greeting": "saved"}))
    page.fill("#new-description", "The demo, as the lab runs it")
    page.fill("#new-labels", "team")
    page.click("button:has-text('Add to the launchpad')")
    card = page.locator("article[data-pipeline='demo-pad']")
    card.wait_for()
    assert "The demo, as the lab runs it" in card.inner_text()
    assert card.locator(".chip", has_text="team").count() == 1
    shot(page, "launchpad")

    card.locator("text=Launch").click()
    page.locator("h1", has_text="Launch demo-pad").wait_for()
    assert page.input_value("#pipeline") == "nf-core/demo"
    assert json.loads(page.input_value("#params"))["greeting"] == "saved"
    assert page.input_value("#labels") == "team"
    page.fill("#runName", "from-the-pad")  # an override of this launch only
    page.click("button:has-text('Launch')")
    page.wait_for_selector("#run-title")
    run_id = page.url.rsplit("/", 1)[-1]
    assert page.locator("#run-title").inner_text() == "from-the-pad"
    page.locator("#run-labels .chip", has_text="team").wait_for()

    page.fill("#run-labels-input", "team, env=prod")
    page.click("form.inline >> button:has-text('Apply')")
    page.locator("#run-labels .chip", has_text="env=prod").wait_for()
    headers = {"Authorization": f"Bearer {gateway['admin']}"}
    described = httpx.get(
        f"{gateway['base']}/api/workflow/{run_id}", headers=headers, params={"attributes": "labels"}
    ).json()
    assert sorted((lab["name"], lab.get("value")) for lab in described["labels"]) == [
        ("env", "prod"),
        ("team", None),
    ]
    page.click("#run-labels .chip:has-text('env=prod')")
    page.locator("table.runs a", has_text="from-the-pad").wait_for()
    assert page.input_value("#search") == "label:env=prod"
    assert page.locator("table.runs tbody tr").count() == 1
    assert not page.problems, page.problems
