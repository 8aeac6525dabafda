"""The dashboard's "Sign in with <provider>" in a real headless Chromium: `wes-gateway
serve` configured for single sign-on against a real OpenID provider (tests/oidc_provider),
a person signing in on the provider's login page and landing on their runs.

Needs Chromium, Playwright, node and npm; the tests skip, saying so, without them."""

from __future__ import annotations

import httpx
import pytest

from tests import openid
from tests.http.test_dashboard import WAIT, browser, shot  # noqa: F401 - fixtures
from tests.live import execution_env, free_port, serve

pytestmark = [pytest.mark.slow, pytest.mark.backing_independent]


@pytest.fixture(scope="module")
def sso_gateway(tmp_path_factory):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with openid.provider(
        tmp_path_factory.mktemp("idp"), redirect_uri=f"{base}/sso/callback"
    ) as idp:
        env = execution_env(
            tmp_path_factory.mktemp("dashboard-sso") / "data",
            WES_GATEWAY_OIDC_ISSUER=idp.issuer,
            WES_GATEWAY_OIDC_CLIENT_ID=openid.DASHBOARD_ID,
            WES_GATEWAY_OIDC_CLIENT_SECRET=openid.DASHBOARD_SECRET,
            WES_GATEWAY_OIDC_ADMIN_GROUP="wes-admins",
        )
        with serve(env, port=port, kill_at_end=True) as (served, _process):
            assert served == base
            yield {"base": base, "idp": idp}


def test_sign_in_with_the_provider_and_out_again(browser, sso_gateway):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(sso_gateway["base"] + "/")
    button = page.wait_for_selector("#sso")
    shot(page, "sso-sign-in")
    host = sso_gateway["idp"].issuer.removeprefix("http://")
    assert button.inner_text() == f"Sign in with {host}"
    # The pasted-token form is still there beside it.
    assert page.is_visible("#token")
    button.click()
    page.wait_for_selector("input[name=login]")
    assert page.url.startswith(sso_gateway["idp"].url)
    page.fill("input[name=login]", "carol")
    page.fill("input[name=password]", "any")
    page.click("button:has-text('Sign-in')")
    page.wait_for_selector("h1:has-text('Runs')")
    assert page.url == sso_gateway["base"] + "/#/runs"
    assert page.inner_text("#who") == "carol (admin)"
    shot(page, "sso-signed-in")
    # The token is in the tab's session storage, never in the address bar or a cookie the
    # page can read.
    stored = page.evaluate("sessionStorage.getItem('wes-gateway-token')")
    assert stored and stored not in page.url
    assert page.evaluate("document.cookie") == ""
    me = httpx.get(
        f"{sso_gateway['base']}/api/user-info", headers={"Authorization": f"Bearer {stored}"}
    )
    assert me.status_code == 200
    # Signing out ends the session's token on the service, not only in the tab.
    page.click("#signout")
    page.wait_for_selector("#sso")
    assert page.evaluate("sessionStorage.getItem('wes-gateway-token')") is None
    gone = httpx.get(
        f"{sso_gateway['base']}/api/user-info", headers={"Authorization": f"Bearer {stored}"}
    )
    assert gone.status_code == 401
    assert problems == []
    context.close()
