"""Single sign-on against a real OpenID provider started by the tests (tests/oidc_provider).

Both APIs take the provider's bearer JWTs: users are made on first use, an admin group
makes a service administrator, keys rotate without a restart, and an expired,
foreign-audience, wrong-issuer or unsigned token is a 401; local tokens keep working
beside them. The dashboard signs people in with the authorization-code flow (PKCE, state,
nonce), driven here through the provider's own login form."""

from __future__ import annotations

import base64
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests import openid
from tests.conftest import WES, submit
from wes_gateway.http.app import create_app
from wes_gateway.infra import oidc


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    with openid.provider(
        tmp_path_factory.mktemp("idp"), redirect_uri="http://testserver/sso/callback"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def sso_app(settings, idp):
    configured = settings.model_copy(
        update={
            "oidc_issuer": idp.issuer,
            "oidc_client_id": openid.DASHBOARD_ID,
            "oidc_client_secret": openid.DASHBOARD_SECRET,
            "oidc_audience": f"{openid.AUDIENCE}, urn:another:api",
            "oidc_admin_group": "wes-admins",
        }
    )
    return create_app(configured)


@pytest.fixture
def sso(sso_app, db, monkeypatch):
    # Refetch the keys at once on an unknown key id (the rotation test restarts the
    # provider), and no clock leeway (the expiry test waits out a 1 s token).
    monkeypatch.setattr(oidc, "JWKS_MIN_REFETCH", 0.0)
    monkeypatch.setattr(oidc, "LEEWAY", 0)
    with sso_app.test_client() as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_provider_token_works_on_both_apis_and_makes_the_user(sso, idp):
    headers = bearer(idp.client_token("alice-cli"))
    me = sso.get("/api/user-info", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["user"]["userName"] == "alice.sso"
    assert me.json()["user"]["admin"] is False
    run_id = submit(sso, headers)
    assert sso.get(f"{WES}/runs/{run_id}", headers=headers).status_code == 200
    listed = sso.get("/api/workflow", headers=headers).json()["workflows"]
    assert [w["workflow"]["id"] for w in listed] == [run_id]
    assert listed[0]["workflow"]["userName"] == "alice.sso"
    # The same user on the next call, not a second one.
    again = sso.get("/api/user-info", headers=bearer(idp.client_token("alice-cli")))
    assert again.json()["user"]["id"] == me.json()["user"]["id"]


def test_local_tokens_keep_working_beside_sso(sso, alice):
    me = sso.get("/api/user-info", headers=alice)
    assert me.status_code == 200
    assert me.json()["user"]["userName"] == "alice"
    assert sso.get(f"{WES}/runs", headers=alice).status_code == 200


def test_the_admin_group_makes_a_service_administrator(sso, idp, alice):
    run_id = submit(sso, alice)
    carol = bearer(idp.client_token("carol-cli"))
    me = sso.get("/api/user-info", headers=carol).json()["user"]
    assert me["userName"] == "carol"
    assert me["admin"] is True
    assert sso.get(f"{WES}/runs/{run_id}", headers=carol).status_code == 200
    # Not in the group: alice.sso does not see alice's run.
    other = bearer(idp.client_token("alice-cli"))
    assert sso.get(f"{WES}/runs/{run_id}", headers=other).status_code in (403, 404)


def test_a_user_name_that_does_not_fit_is_mapped_clearly(sso, idp):
    headers = bearer(idp.client_token("odd-cli"))
    name = sso.get("/api/user-info", headers=headers).json()["user"]["userName"]
    # "Ann Lee <ann@example.org>": unfit characters become "-", plus a digest of the claim.
    assert re.fullmatch(r"Ann-Lee-ann-example.org-[0-9a-f]{8}", name), name


def test_an_expired_token_is_refused(sso, idp):
    token = idp.client_token("short-cli")  # lives 5 s
    assert sso.get("/api/user-info", headers=bearer(token)).status_code == 200
    expires = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
    time.sleep(max(0.0, expires - time.time()) + 1.2)
    answer = sso.get("/api/user-info", headers=bearer(token))
    assert answer.status_code == 401
    assert sso.get(f"{WES}/runs", headers=bearer(token)).status_code == 401


def test_a_token_for_another_audience_is_refused(sso, idp):
    assert (
        sso.get(
            "/api/user-info",
            headers=bearer(idp.client_token("alice-cli", resource="urn:another:api")),
        ).status_code
        == 200
    )  # a second configured audience
    foreign = idp.client_token("alice-cli", resource="https://other.example/api")
    assert sso.get("/api/user-info", headers=bearer(foreign)).status_code == 401
    assert sso.get(f"{WES}/runs", headers=bearer(foreign)).status_code == 401


def test_a_token_of_another_issuer_is_refused_even_with_the_same_keys(sso, idp, tmp_path_factory):
    keys = openid.key_set("shared")
    idp.restart(keys)
    assert (
        sso.get("/api/user-info", headers=bearer(idp.client_token("alice-cli"))).status_code == 200
    )
    with openid.provider(
        tmp_path_factory.mktemp("impostor"), issuer="http://127.0.0.1:9/impostor", keys=keys
    ) as impostor:
        token = impostor.client_token("alice-cli")
    assert sso.get("/api/user-info", headers=bearer(token)).status_code == 401
    assert sso.get(f"{WES}/runs", headers=bearer(token)).status_code == 401


def test_an_unsigned_token_is_refused(sso, idp):
    token = idp.client_token("alice-cli")
    assert sso.get("/api/user-info", headers=bearer(token)).status_code == 200
    forged = openid.unsigned(token)
    assert sso.get("/api/user-info", headers=bearer(forged)).status_code == 401
    assert sso.get(f"{WES}/runs", headers=bearer(forged)).status_code == 401
    # Nor a token whose signature was swapped for another's.
    other = idp.client_token("carol-cli")
    spliced = ".".join(token.split(".")[:2] + other.split(".")[2:])
    assert sso.get("/api/user-info", headers=bearer(spliced)).status_code == 401


def test_keys_rotate_without_a_restart(sso, idp):
    before = idp.client_token("alice-cli")
    assert sso.get("/api/user-info", headers=bearer(before)).status_code == 200
    idp.restart(openid.key_set(f"rotated-{time.monotonic_ns()}"))
    after = idp.client_token("alice-cli")
    answer = sso.get("/api/user-info", headers=bearer(after))
    assert answer.status_code == 200, answer.text
    assert sso.get(f"{WES}/runs", headers=bearer(after)).status_code == 200
    # The retired key's tokens no longer verify.
    assert sso.get("/api/user-info", headers=bearer(before)).status_code == 401


def sign_in(sso, idp, login: str) -> httpx.Response:
    """A person signing in on the dashboard: the gateway's login redirect, the provider's
    login form, and back to the gateway's callback; returns the callback's answer."""
    start = sso.get("/sso/login", follow_redirects=False)
    assert start.status_code == 302, start.text
    location = start.headers["location"]
    assert location.startswith(f"{idp.url}/auth?")
    with httpx.Client(timeout=10) as browser:
        answer = browser.get(location)
        for _ in range(10):
            if answer.status_code in (302, 303):
                location = answer.headers["location"]
                if location.startswith("http://testserver/"):
                    break
                answer = browser.get(httpx.URL(str(answer.url)).join(location))
            elif "/interaction/" in str(answer.url):
                answer = browser.post(
                    answer.url, data={"prompt": "login", "login": login, "password": "any"}
                )
            else:
                raise AssertionError(f"unexpected step {answer.url}: {answer.status_code}")
    assert location.startswith("http://testserver/sso/callback?"), location
    return sso.get(location.removeprefix("http://testserver"), follow_redirects=False)


def test_the_dashboard_offers_single_sign_on(sso, idp):
    facts = sso.get("/ui/facts.js").text
    assert idp.issuer in facts
    assert '"login": "/sso/login"' in facts


def test_a_person_signs_in_on_the_dashboard(sso, idp):
    start = sso.get("/sso/login", follow_redirects=False)
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] and query["nonce"] and query["code_challenge"]
    cookie = start.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie

    back = sign_in(sso, idp, "dora")
    assert back.status_code == 302, back.text
    assert back.headers["location"] == "/#/runs"
    assert "eyJ" not in back.headers["location"]  # no token in the URL
    handoff = back.headers["set-cookie"].lower()
    assert "httponly" in handoff and "samesite=strict" in handoff
    session = sso.post("/sso/session")
    assert session.status_code == 200
    token = session.json()["token"]
    # Once only.
    assert sso.post("/sso/session").status_code == 404
    me = sso.get("/api/user-info", headers=bearer(token)).json()["user"]
    assert me["userName"] == "dora"
    assert me["admin"] is False
    assert sso.get(f"{WES}/runs", headers=bearer(token)).status_code == 200
    # The session token is listed, and may be revoked, like any other.
    listed = sso.get("/api/tokens", headers=bearer(token)).json()["tokens"]
    assert [t["name"] for t in listed] == ["dashboard sign-in"]


def test_the_admin_group_signs_in_as_an_administrator(sso, idp):
    back = sign_in(sso, idp, "carol")
    assert back.status_code == 302
    token = sso.post("/sso/session").json()["token"]
    assert sso.get("/api/user-info", headers=bearer(token)).json()["user"]["admin"] is True


def test_a_callback_without_the_sign_in_under_way_is_refused(sso, idp):
    start = sso.get("/sso/login", follow_redirects=False)
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    wrong = sso.get(f"/sso/callback?code=abc&state={state}x", follow_redirects=False)
    assert wrong.status_code == 400
    assert wrong.text.startswith("Sign-in failed: state")
    sso.cookies.clear()
    stray = sso.get(f"/sso/callback?code=abc&state={state}", follow_redirects=False)
    assert stray.status_code == 400
    assert "state" in stray.text
    assert sso.post("/sso/session").status_code == 404


def test_a_forged_code_is_refused(sso, idp):
    start = sso.get("/sso/login", follow_redirects=False)
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    forged = sso.get(f"/sso/callback?code=forged&state={state}", follow_redirects=False)
    assert forged.status_code == 401
    assert sso.post("/sso/session").status_code == 404


def test_a_provider_account_is_its_issuer_and_subject_not_its_name(sso, idp, make_user):
    """A second account claiming a user name already held gets a name of its own; so
    does an account claiming the name of a user the operator made (unless the operator
    allows linking them)."""
    alice = sso.get("/api/user-info", headers=bearer(idp.client_token("alice-cli"))).json()
    mallory = sso.get("/api/user-info", headers=bearer(idp.client_token("mallory-cli")))
    assert mallory.status_code == 200, mallory.text
    theirs = mallory.json()["user"]
    assert theirs["id"] != alice["user"]["id"]
    assert re.fullmatch(r"alice\.sso-[0-9a-f]{8}", theirs["userName"]), theirs
    # alice's run stays hers.
    alices = bearer(idp.client_token("alice-cli"))
    run_id = submit(sso, alices)
    malloryh = bearer(idp.client_token("mallory-cli"))
    assert sso.get(f"{WES}/runs/{run_id}", headers=malloryh).status_code == 404
    # Each account keeps reaching its own user.
    again = sso.get("/api/user-info", headers=bearer(idp.client_token("mallory-cli")))
    assert again.json()["user"]["id"] == theirs["id"]

    local = make_user("dave")  # made by the operator before single sign-on
    dave = sso.get("/api/user-info", headers=bearer(idp.client_token("dave-cli"))).json()
    assert dave["user"]["userName"] != "dave"
    assert dave["user"]["id"] != sso.get("/api/user-info", headers=local).json()["user"]["id"]


def test_linking_existing_users_is_the_operator_s_choice(settings, idp, db, make_user):
    local = make_user("alice.sso")
    linking = create_app(
        settings.model_copy(
            update={
                "oidc_issuer": idp.issuer,
                "oidc_audience": openid.AUDIENCE,
                "oidc_link_existing_users": True,
            }
        )
    )
    with linking.test_client() as client:
        mine = client.get("/api/user-info", headers=local).json()["user"]
        linked = client.get("/api/user-info", headers=bearer(idp.client_token("alice-cli")))
        assert linked.json()["user"] == mine
        # Once held, the user is that account's: another claiming the name gets its own.
        other = client.get("/api/user-info", headers=bearer(idp.client_token("mallory-cli")))
        assert other.json()["user"]["id"] != mine["id"]


def test_leaving_the_admin_group_ends_the_rights_it_gave(sso, idp, admin):
    idp.set_groups("dave-cli", ["wes-admins", "lab"])
    first = sso.get("/api/user-info", headers=bearer(idp.client_token("dave-cli"))).json()
    assert first["user"]["admin"] is True
    others = submit(sso, admin)
    assert (
        sso.get(f"{WES}/runs/{others}", headers=bearer(idp.client_token("dave-cli"))).status_code
        == 200
    )
    idp.set_groups("dave-cli", ["lab"])
    later = bearer(idp.client_token("dave-cli"))
    assert sso.get("/api/user-info", headers=later).json()["user"]["admin"] is False
    assert sso.get(f"{WES}/runs/{others}", headers=later).status_code == 404
    idp.set_groups("dave-cli", ["wes-admins"])
    back = bearer(idp.client_token("dave-cli"))
    assert sso.get("/api/user-info", headers=back).json()["user"]["admin"] is True


def test_an_administrator_made_by_the_operator_stays_one(settings, idp, make_user):
    """The group takes away only what it gave: an operator's administrator, linked to a
    provider account outside the group, keeps the rights."""
    local = make_user("dave", admin=True)
    linking = create_app(
        settings.model_copy(
            update={
                "oidc_issuer": idp.issuer,
                "oidc_audience": openid.AUDIENCE,
                "oidc_admin_group": "wes-admins",
                "oidc_link_existing_users": True,
            }
        )
    )
    idp.set_groups("dave-cli", [])
    with linking.test_client() as client:
        me = client.get("/api/user-info", headers=bearer(idp.client_token("dave-cli"))).json()
        assert (me["user"]["userName"], me["user"]["admin"]) == ("dave", True)
        assert client.get("/api/user-info", headers=local).json()["user"]["admin"] is True


def test_a_provider_that_cannot_be_reached_is_a_503_not_a_401(settings, idp, db):
    unreachable = create_app(
        settings.model_copy(
            update={"oidc_issuer": "http://127.0.0.1:9", "oidc_audience": openid.AUDIENCE}
        )
    )
    token = idp.client_token("alice-cli")
    with unreachable.test_client() as client:
        for url in ("/api/user-info", f"{WES}/runs"):
            answer = client.get(url, headers=bearer(token))
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] == "30"
            assert "OpenID provider cannot be reached" in answer.text
        # A local token does not need the provider.
        assert client.get("/api/user-info", headers=bearer("not-a-jwt")).status_code == 401


def test_users_made_before_accounts_were_linked_are_found_by_name(sso, idp, make_user, db):
    from sqlalchemy import update

    from wes_gateway.domain.models import User

    earlier = make_user("alice.sso")
    with db.session() as session:
        session.execute(update(User).where(User.name == "alice.sso").values(made_by=None))
    mine = sso.get("/api/user-info", headers=earlier).json()["user"]
    signed = sso.get("/api/user-info", headers=bearer(idp.client_token("alice-cli")))
    assert signed.json()["user"] == mine


def test_a_verified_address_finds_the_user_for_members_and_participants(sso, idp, make_user):
    ann = make_user("ann")
    sso.get("/api/user-info", headers=bearer(idp.client_token("alice-cli")))  # verified
    sso.get("/api/user-info", headers=bearer(idp.client_token("mallory-cli")))  # unverified
    org = sso.post(
        "/api/orgs", headers=ann, json={"organization": {"name": "acme", "fullName": "A"}}
    ).json()["organization"]["orgId"]
    added = sso.put(f"/api/orgs/{org}/members/add", headers=ann, json={"user": "alice@example.org"})
    assert added.status_code == 200, added.text
    member = added.json()["member"]
    assert (member["userName"], member["email"]) == ("alice.sso", "alice@example.org")
    unverified = sso.put(
        f"/api/orgs/{org}/members/add", headers=ann, json={"user": "boss@example.org"}
    )
    assert unverified.status_code == 400 and unverified.json()["message"].startswith("user")
