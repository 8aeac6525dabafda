"""The dashboard's credentials and secrets pages, in a real headless Chromium: a
workspace's owner adds credentials and a pipeline secret; the secret fields are
write-only (password inputs, emptied once sent, never shown back)."""

from __future__ import annotations

import httpx
import pytest

from tests.http.test_dashboard import (  # noqa: F401 - the fixtures of the dashboard tests
    WAIT,
    _lab_workspace,
    browser,
    gateway,
    page,
    shot,
    sign_in,
)

pytestmark = [pytest.mark.slow, pytest.mark.backing_independent]

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SECRET_VALUE = "v4lue-n0t-to-be-sh0wn"


def test_a_workspace_owner_adds_credentials_and_a_secret_write_only(page, gateway):  # noqa: F811
    lab = _lab_workspace(gateway, "lab-keys", "bob")
    sign_in(page, gateway, "bob")
    page.select_option("#workspace", label="lab-keys / shared")
    page.click("nav >> text=Credentials")
    page.fill("#credentials-name", "aws-prod")
    page.select_option("#credentials-provider", "aws")
    page.fill("#credentials-accessKey", "AKIAIOSFODNN7EXAMPLE")
    assert page.get_attribute("#credentials-secretKey", "type") == "password"
    page.fill("#credentials-secretKey", SECRET_KEY)
    page.click("button:has-text('Add')")
    row = page.locator("table.credentials tr", has_text="aws-prod")
    row.wait_for()
    assert "AKIAIOSFODNN7EXAMPLE" in row.inner_text()
    assert page.input_value("#credentials-secretKey") == ""  # not kept in the page
    assert SECRET_KEY not in page.content()
    shot(page, "credentials")
    # A wrong field is shown beside the form, naming it.
    page.fill("#credentials-name", "broken")
    page.select_option("#credentials-provider", "aws")
    page.fill("#credentials-accessKey", "not a key")
    page.fill("#credentials-secretKey", "x")
    page.click("button:has-text('Add')")
    page.locator("#credentials-error", has_text="credentials.keys.accessKey").wait_for()

    page.click("nav >> text=Secrets")
    page.fill("#secret-name", "DB_PASSWORD")
    assert page.get_attribute("#secret-value", "type") == "password"
    page.fill("#secret-value", SECRET_VALUE)
    page.click("button:has-text('Add')")
    page.locator("table.secrets tr", has_text="DB_PASSWORD").wait_for()
    page.reload()
    page.locator("table.secrets tr", has_text="DB_PASSWORD").wait_for()
    assert SECRET_VALUE not in page.content()

    api = gateway["base"] + "/api"
    headers = {"Authorization": f"Bearer {gateway['bob']}"}
    params = {"workspaceId": lab["workspaceId"]}
    listed = httpx.get(f"{api}/credentials", headers=headers, params=params).json()
    assert [c["name"] for c in listed["credentials"]] == ["aws-prod"]
    secrets = httpx.get(f"{api}/pipeline-secrets", headers=headers, params=params).json()
    assert [s["name"] for s in secrets["pipelineSecrets"]] == ["DB_PASSWORD"]
    # Deleting asks first, then the row is gone.
    page.locator("table.secrets tr", has_text="DB_PASSWORD").locator(
        "button:has-text('Delete')"
    ).click()
    page.locator("table.secrets", has_text="No secrets yet.").wait_for(timeout=WAIT)
    assert page.problems == []
