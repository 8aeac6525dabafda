"""The web dashboard in a real headless Chromium against `wes-gateway serve` with the
Nextflow stand-in: what a person sees and does, page by page.

Needs Chromium (Debian's ``chromium``) and Playwright for Python; the tests skip, saying
so, where either is missing. Screenshots go to ``test-artifacts/`` at the top of the
checkout."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.live import admin_token, execution_env, run_cli, serve

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
expect = playwright_api.expect
CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None
)
if CHROMIUM is None:
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)

pytestmark = [pytest.mark.slow, pytest.mark.backing_independent]  # the embedded default
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
WAIT = 30_000  # ms


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    env = execution_env(tmp_path_factory.mktemp("dashboard") / "data")
    with serve(env, kill_at_end=True) as (base, process):
        bob = run_cli(env, "token", "create", "bob").stdout.strip()
        carol = run_cli(env, "token", "create", "carol").stdout.strip()
        yield {"base": base, "admin": admin_token(process), "bob": bob, "carol": carol}


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    page.problems = []  # script errors
    page.dialogs = []  # what confirm() asked; each is accepted
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.on("dialog", lambda dialog: page.dialogs.append(dialog.message) or dialog.accept())
    yield page
    context.close()


def sign_in(page, gateway, who: str = "admin") -> None:
    page.goto(gateway["base"] + "/")
    page.fill("#token", gateway[who])
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("h1:has-text('Runs')")


def launch_from_form(page, **params) -> str:
    page.click("nav >> text=Launch")
    page.fill("#pipeline", "nf-core/demo")
    page.fill("#params", json.dumps(params))
    page.click("button:has-text('Launch')")
    page.wait_for_selector("#run-title")
    return page.url.rsplit("/", 1)[-1]


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_launch_watch_progress_and_log_live_and_open_a_task(page, gateway):
    # Every console read is one page: a maxLength, and from the second on a next token.
    log_reads: list[str] = []
    page.on(
        "request",
        lambda request: (
            log_reads.append(request.url)
            if re.search(r"/api/workflow/[^/?]+/log(\?|$)", request.url)
            else None
        ),
    )
    sign_in(page, gateway)
    page.locator("table.runs tbody tr").first.wait_for()  # a run, or the empty state's row
    run_id = launch_from_form(page, standin_tasks=4, standin_task_seconds=2)
    counts = page.locator(".progress-row").first.locator(".counts")
    # The page updates by itself: tasks appear running, then all four have succeeded.
    counts.filter(has_text="running").wait_for()
    page.locator(".console", has_text="Submitted process > STANDIN_TASK (1)").wait_for()
    page.locator(".status-line", has_text="RUNNING").wait_for()
    shot(page, "run-running")
    counts.filter(has_text="4 succeeded").wait_for()
    page.locator(".status-line", has_text="SUCCEEDED").wait_for()
    page.locator(".status-line", has_text="COMPLETE").wait_for()
    page.locator(".console", has_text="Succeeded   : 4").wait_for()
    assert log_reads and all("maxLength=65536" in url for url in log_reads), log_reads
    assert all("next=" in url for url in log_reads[1:]), log_reads
    # A task's stderr, from the task table.
    page.click("table.tasks >> text=STANDIN_TASK (2)")
    page.click("button:has-text('stderr')")
    page.locator(".task-files pre", has_text="task 2 message").wait_for()
    page.locator(".chart").first.wait_for()  # metrics drawn once the run has ended
    shot(page, "run-page")
    page.click("text=← Runs")
    page.locator(f"a[href='#/runs/{run_id}']").wait_for()
    page.locator("table.runs", has_text="SUCCEEDED").wait_for()
    shot(page, "runs-list")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "runs-list-phone")
    assert page.problems == []


def test_cancel_a_hanging_run(page, gateway):
    sign_in(page, gateway)
    launch_from_form(page, standin_tasks=1, standin_hang="true")
    page.locator(".status-line", has_text="RUNNING").wait_for()
    page.locator(".console", has_text="Submitted process").wait_for()
    page.click("button:has-text('Cancel run')")
    page.locator(".status-line", has_text="CANCELLED").wait_for()
    page.locator(".status-line", has_text="CANCELED").wait_for()
    assert page.locator("button:has-text('Cancel run')").count() == 0
    assert len(page.dialogs) == 1 and page.dialogs[0].startswith("Cancel run")
    assert page.problems == []


def test_a_bad_revision_is_shown_beside_its_field(page, gateway):
    sign_in(page, gateway)
    page.click("nav >> text=Launch")
    page.fill("#pipeline", "nf-core/demo")
    page.fill("#revision", "no good;rm -rf")
    page.click("button:has-text('Launch')")
    error = page.locator("#revision-error")
    error.filter(has_text="revision").wait_for()
    assert page.locator("#revision").get_attribute("aria-invalid") == "true"
    assert page.locator("#pipeline-error").inner_text() == ""
    shot(page, "launch-error")


def test_markup_from_the_api_renders_as_text(page, gateway):
    sign_in(page, gateway)
    echo = "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
    launch_from_form(page, standin_tasks=1, standin_echo=echo)
    page.locator(".console", has_text="<script>window.pwned = 1</script>").wait_for()
    # A monitoring-only run whose name is markup, as a -with-tower client may send.
    headers = {"Authorization": f"Bearer {gateway['admin']}"}
    name = "<img src=x onerror='window.pwned = 3'>"
    created = httpx.post(
        f"{gateway['base']}/api/trace/create",
        headers=headers,
        json={
            "sessionId": "4ee8a6a5-2b4e-4a3f-9b1c-7f0d7a1c0c11",
            "runName": name,
            "projectName": "hello",
            "repository": "https://github.com/nextflow-io/hello",
        },
    )
    assert created.status_code == 200, created.text
    workflow_id = created.json()["workflowId"]
    page.goto(f"{gateway['base']}/#/runs/{workflow_id}")
    page.locator("#run-title", has_text=name).wait_for()
    page.goto(f"{gateway['base']}/#/runs")
    page.locator("table.runs", has_text=name).wait_for()
    assert page.evaluate("window.pwned") is None
    assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
    assert page.problems == [] and page.dialogs == []


def test_another_users_run_is_not_reachable(page, gateway, browser):
    sign_in(page, gateway)
    run_id = launch_from_form(page, standin_tasks=1)
    other = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    other.set_default_timeout(WAIT)
    sign_in(other, gateway, "bob")
    assert other.locator(f"a[href='#/runs/{run_id}']").count() == 0
    other.goto(f"{gateway['base']}/#/runs/{run_id}")
    other.locator("h1", has_text="Run not found").wait_for()
    assert other.locator("button:has-text('Cancel run')").count() == 0
    other.context.close()


def test_a_rejected_token_sends_you_back_to_sign_in(page, gateway):
    page.goto(gateway["base"] + "/")
    page.fill("#token", "not-a-token")
    page.click("button:has-text('Sign in')")
    page.locator("#token-error", has_text="not accepted").wait_for()
    sign_in(page, gateway)
    page.evaluate("sessionStorage.setItem('wes-gateway-token', 'revoked-or-wrong')")
    page.goto(gateway["base"] + "/#/launch")
    page.locator("#token-error", has_text="Sign in again").wait_for()


def test_security_headers(gateway):
    response = httpx.get(gateway["base"] + "/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-frame-options"] == "DENY"


def test_relaunch_opens_the_form_filled_from_the_run(page, gateway):
    sign_in(page, gateway)
    page.click("nav >> text=Launch")
    page.fill("#pipeline", "nf-core/demo")
    page.fill("#params", json.dumps({"standin_tasks": 1, "greeting": "hello"}))
    page.fill("#config", "process.cpus = 2\n")
    page.fill("#mainScript", "flows/other.nf")
    page.fill("#entryName", "ALT")
    page.click("button:has-text('Launch')")
    page.wait_for_selector("#run-title")
    run_id = page.url.rsplit("/", 1)[-1]
    page.locator(".status-line", has_text="SUCCEEDED").wait_for()
    page.click("text=Relaunch")
    page.locator("h1", has_text=f"Relaunch {run_id}").wait_for()
    assert page.input_value("#pipeline") == "nf-core/demo"
    assert json.loads(page.input_value("#params"))["greeting"] == "hello"
    # Every launch setting comes back: the config text, the main script and the entry.
    assert page.input_value("#config") == "process.cpus = 2\n"
    assert page.input_value("#mainScript") == "flows/other.nf"
    assert page.input_value("#entryName") == "ALT"
    assert page.locator("#resume").is_enabled()  # Nextflow's session can be resumed
    page.check("#resume")
    page.click("button:has-text('Launch')")
    page.wait_for_url(lambda url: run_id not in url)
    page.locator(".status-line", has_text="SUCCEEDED").wait_for()
    facts = page.locator(".facts").inner_text()
    assert " -resume " in facts and "-main-script flows/other.nf" in facts
    assert "-entry ALT" in facts
    second = page.url.rsplit("/", 1)[-1]
    headers = {"Authorization": f"Bearer {gateway['admin']}"}
    launch = httpx.get(f"{gateway['base']}/api/workflow/{second}/launch", headers=headers)
    relaunched = launch.json()["launch"]
    assert relaunched["configText"] == "process.cpus = 2\n"
    assert (relaunched["mainScript"], relaunched["entryName"]) == ("flows/other.nf", "ALT")
    assert relaunched["resume"] is True


def test_an_admin_adds_a_compute_environment_and_sees_it_checked(page, gateway):
    sign_in(page, gateway)
    page.click("nav >> text=Compute environments")
    page.locator("table", has_text="local-platform").wait_for()
    page.fill("#env-name", "aws-nowhere")
    page.select_option("#env-platform", "aws-batch")
    config = {
        "region": "eu-west-1",
        "headQueue": "nf-head",
        "workDir": "s3://bucket/work",
        "endpointUrl": "http://127.0.0.1:9",  # nothing listens there
    }
    page.fill("#env-config", json.dumps(config))
    page.click("button:has-text('Create')")
    row = page.locator("tr", has_text="aws-nowhere")
    row.wait_for()
    # A worker tries it against the cloud and says why it cannot take runs.
    row.locator(".badge", has_text="INVALID").wait_for(timeout=60_000)
    assert "did not answer" in row.inner_text()
    page.fill("#env-name", "bad")
    page.fill("#env-config", json.dumps({**config, "region": "moon"}))
    page.click("button:has-text('Create')")
    page.locator("form .field-error", has_text="computeEnv.config.region").wait_for()


def _lab_workspace(gateway, name: str, who: str) -> dict:
    """An organization and a workspace made through the API by ``who``, who owns both."""
    headers = {"Authorization": f"Bearer {gateway[who]}"}
    api = gateway["base"] + "/api"
    org = httpx.post(
        f"{api}/orgs", headers=headers, json={"organization": {"name": name, "fullName": name}}
    )
    assert org.status_code == 200, org.text
    org_id = org.json()["organization"]["orgId"]
    workspace = httpx.post(
        f"{api}/orgs/{org_id}/workspaces",
        headers=headers,
        json={"workspace": {"name": "shared", "fullName": "Shared", "visibility": "PRIVATE"}},
    )
    assert workspace.status_code == 200, workspace.text
    return {"orgId": org_id, "workspaceId": workspace.json()["workspace"]["id"]}


def test_a_workspace_is_chosen_shared_with_a_participant_and_keeps_its_runs(page, gateway, browser):
    lab = _lab_workspace(gateway, "lab-dashboard", "bob")
    sign_in(page, gateway, "bob")
    page.select_option("#workspace", label="lab-dashboard / shared")
    run_id = launch_from_form(page, standin_tasks=1)
    page.locator(".status-line", has_text="SUCCEEDED").wait_for()
    # The run is the workspace's: listed there, not in bob's personal workspace.
    page.click("nav >> text=Runs")
    page.locator(f"a[href='#/runs/{run_id}']").wait_for()
    page.select_option("#workspace", label="Personal")
    expect(page.locator(f"a[href='#/runs/{run_id}']")).to_have_count(0)
    page.select_option("#workspace", label="lab-dashboard / shared")
    page.locator(f"a[href='#/runs/{run_id}']").wait_for()
    # Its owner adds a participant, who joins with the role launch, then makes them a viewer.
    page.click("nav >> text=Participants")
    page.fill("#participant-name", "admin")
    page.click("button:has-text('Add')")
    row = page.locator("table.participants tr", has_text="admin")
    row.wait_for()
    assert row.locator("select").input_value() == "launch"
    row.locator("select").select_option("view")
    page.locator("#notice", has_text="admin is now view").wait_for()
    shot(page, "participants")
    # The participant finds the workspace in the switcher, and the run in it.
    other = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    other.set_default_timeout(WAIT)
    sign_in(other, gateway, "admin")
    other.select_option("#workspace", label="lab-dashboard / shared")
    other.locator(f"a[href='#/runs/{run_id}']").wait_for()
    other.context.close()
    participants = httpx.get(
        f"{gateway['base']}/api/orgs/{lab['orgId']}/workspaces/{lab['workspaceId']}/participants",
        headers={"Authorization": f"Bearer {gateway['bob']}"},
    ).json()["participants"]
    assert {p.get("userName"): p["wspRole"] for p in participants}["admin"] == "view"
    assert page.problems == []


def test_an_api_token_is_made_shown_once_used_and_revoked(page, gateway):
    sign_in(page, gateway, "bob")
    page.click("nav >> text=API tokens")
    page.fill("#token-name", "reader")
    page.check("#token-read-only")
    page.click("button:has-text('Create token')")
    secret = page.locator("#new-token").inner_text().strip()
    page.locator("table.tokens tr", has_text="reader").filter(has_text="read only").wait_for()
    shot(page, "api-tokens")
    headers = {"Authorization": f"Bearer {secret}"}
    api = gateway["base"] + "/api"
    assert httpx.get(f"{api}/user-info", headers=headers).json()["user"]["userName"] == "bob"
    launch = {"launch": {"pipeline": "nf-core/demo"}}
    assert httpx.post(f"{api}/workflow/launch", headers=headers, json=launch).status_code == 403
    # Shown once: after a reload the page lists the token without its secret.
    page.reload()
    page.locator("table.tokens tr", has_text="reader").wait_for()
    assert secret not in page.content()
    page.locator("table.tokens tr", has_text="reader").locator("button:has-text('Revoke')").click()
    page.locator("#notice", has_text="revoked").wait_for()
    assert httpx.get(f"{api}/user-info", headers=headers).status_code == 401
    assert page.problems == []


def test_a_token_limited_to_a_workspace_and_a_lifetime(page, gateway):
    lab = _lab_workspace(gateway, "lab-tokens", "bob")
    sign_in(page, gateway, "bob")
    page.select_option("#workspace", label="lab-tokens / shared")
    page.click("nav >> text=API tokens")
    page.fill("#token-name", "lab-only")
    page.fill("#token-days", "30")
    page.check("#token-workspace")
    page.click("button:has-text('Create token')")
    secret = page.locator("#new-token").inner_text().strip()
    row = page.locator("table.tokens tr", has_text="lab-only")
    row.filter(has_text="lab-tokens / shared").wait_for()
    cells = row.locator("td")
    assert cells.nth(2).inner_text() == "lab-tokens / shared"
    assert cells.nth(4).inner_text() not in ("", "never")  # its expiry date
    api = gateway["base"] + "/api"
    listed = httpx.get(
        f"{api}/tokens", headers={"Authorization": f"Bearer {gateway['bob']}"}
    ).json()["tokens"]
    (made,) = [item for item in listed if item["name"] == "lab-only"]
    assert made["workspaceId"] == lab["workspaceId"]
    expires = datetime.fromisoformat(made["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    headers = {"Authorization": f"Bearer {secret}"}
    in_lab = httpx.get(
        f"{api}/workflow", headers=headers, params={"workspaceId": lab["workspaceId"]}
    )
    assert in_lab.status_code == 200
    # It acts in that workspace only: no other place, no organizations of its own.
    org = {"organization": {"name": "elsewhere", "fullName": "Elsewhere"}}
    assert httpx.post(f"{api}/orgs", headers=headers, json=org).status_code == 403
    assert page.problems == []


def test_the_runs_list_pages_on_from_where_the_last_page_ended(page, gateway):
    """Older follows the list's cursor (no offset in the address), a run accepted
    meanwhile does not shift the older page, and Newest comes back to the top."""
    headers = {"Authorization": f"Bearer {gateway['carol']}"}
    made = []
    with httpx.Client(base_url=gateway["base"], headers=headers, timeout=30) as client:
        for n in range(53):
            created = client.post(
                "/api/trace/create", json={"projectName": "nf-core/demo", "runName": f"r{n}"}
            )
            assert created.status_code == 200, created.text
            made.append(created.json()["workflowId"])
        sign_in(page, gateway, "carol")
        rows = page.locator("table.runs tbody tr")
        expect(rows).to_have_count(50)
        expect(rows.first).to_contain_text("r52")
        client.post("/api/trace/create", json={"projectName": "nf-core/demo", "runName": "late"})
    page.click("a:has-text('Older')")
    expect(rows).to_have_count(3)
    assert "cursor=" in page.url and "offset" not in page.url
    assert [rows.nth(n).locator("td").first.inner_text() for n in range(3)] == ["r2", "r1", "r0"]
    assert page.locator("a:has-text('Older')").count() == 0
    page.click("a:has-text('Newest')")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("late")
    assert page.problems == []


def test_an_ended_run_shows_what_it_published_and_saves_it(page, gateway):
    sign_in(page, gateway)
    launch_from_form(page, standin_tasks=2, outdir="results")
    page.locator(".status-line", has_text="COMPLETE").wait_for()
    outputs = page.locator("section[aria-label='Outputs']")
    row = outputs.locator("table.outputs tr", has_text="standin/standin_2.txt")
    row.wait_for()
    expect(outputs.locator("table.outputs tbody tr")).to_have_count(2)
    expect(row).to_contain_text("20 B")  # "published by task 2\n"
    with page.expect_download() as saving:
        row.locator("button:has-text('Save')").click()
    saved = saving.value
    assert saved.suggested_filename == "standin_2.txt"
    assert Path(saved.path()).read_bytes() == b"published by task 2\n"
    with page.expect_download() as saving:
        outputs.locator("button:has-text('RO-Crate')").click()
    assert saving.value.suggested_filename.endswith("-ro-crate.zip")
    assert Path(saving.value.path()).read_bytes()[:2] == b"PK"
    shot(page, "run-outputs")
    assert page.problems == []
