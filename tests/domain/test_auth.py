"""Tokens and isolation: 401 without a good token, another user's run is 404 everywhere
and never listed, admins see all, revoked tokens stop working at once."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from tests.conftest import BY_ID_ENDPOINTS, WES, submit
from wes_gateway.domain import identities, tokens
from wes_gateway.domain.errors import InvalidField
from wes_gateway.domain.models import ApiToken, User


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer " + base64.b64encode(b'{"tid":"nope"}.secret').decode()},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token abc"},
        # A head nested past Python's recursion limit: a 401, not a parser's crash (500).
        {"Authorization": "Bearer " + base64.b64encode(b"[" * 50_000 + b".secret").decode()},
    ],
    ids=["none", "empty", "garbage", "unknown-id", "basic", "other-scheme", "deep-head"],
)
def test_missing_or_bad_token_is_401(client, headers):
    for method, path in [
        ("get", "/runs"),
        ("post", "/runs"),
        ("get", "/runs/x"),
        ("get", "/runs/x/status"),
    ]:
        response = getattr(client, method)(f"{WES}{path}", headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"


def test_wrong_secret_is_401(client, alice):
    token = alice["Authorization"].split()[1]
    payload = base64.b64decode(token).decode()
    forged = base64.b64encode((payload[:-1] + ("0" if payload[-1] != "0" else "1")).encode())
    response = client.get(f"{WES}/runs", headers={"Authorization": f"Bearer {forged.decode()}"})
    assert response.status_code == 401


def test_tokens_are_stored_hashed(db, alice):
    token = alice["Authorization"].split()[1]
    token_id, secret = tokens.parse_token(token)
    with db.session() as session:
        row = session.get(ApiToken, token_id)
    assert secret not in row.secret_hash and token not in row.secret_hash
    assert len(row.secret_hash) == 64


def test_revoked_token_stops_working(client, db, alice):
    assert client.get(f"{WES}/runs", headers=alice).status_code == 200
    token_id, _ = tokens.parse_token(alice["Authorization"].split()[1])
    with db.session() as session:
        assert tokens.revoke_token(session, token_id)
        assert not tokens.revoke_token(session, token_id)
    assert client.get(f"{WES}/runs", headers=alice).status_code == 401


def test_other_users_run_is_invisible(client, alice, bob):
    run_id = submit(client, alice)
    for method, suffix in BY_ID_ENDPOINTS:
        response = getattr(client, method)(f"{WES}/runs/{run_id}{suffix}", headers=bob)
        assert response.status_code == 404, (suffix, response.text)
    assert client.get(f"{WES}/runs", headers=bob).json()["runs"] == []
    # Bob's cancel did nothing.
    assert client.get(f"{WES}/runs/{run_id}/status", headers=alice).json()["state"] == "QUEUED"


def test_admin_sees_and_acts_on_all_runs(client, alice, bob, admin):
    mine, theirs = submit(client, alice), submit(client, bob)
    listed = {item["run_id"] for item in client.get(f"{WES}/runs", headers=admin).json()["runs"]}
    assert listed == {mine, theirs}
    assert client.get(f"{WES}/runs/{mine}", headers=admin).status_code == 200
    assert client.post(f"{WES}/runs/{theirs}/cancel", headers=admin).status_code == 200
    assert client.get(f"{WES}/runs/{theirs}/status", headers=bob).json()["state"] == "CANCELED"


def test_run_scoped_token_sees_only_its_run(client, db, alice):
    mine, other = submit(client, alice), submit(client, alice)
    with db.session() as session:
        user = tokens.ensure_user(session, "alice")
        _, scoped = tokens.create_token(session, user, run_id=mine)
    headers = {"Authorization": f"Bearer {scoped}"}
    assert client.get(f"{WES}/runs/{mine}", headers=headers).status_code == 200
    assert client.get(f"{WES}/runs/{other}", headers=headers).status_code == 404
    listed = [item["run_id"] for item in client.get(f"{WES}/runs", headers=headers).json()["runs"]]
    assert listed == [mine]
    response = client.post(
        f"{WES}/runs",
        headers=headers,
        data={
            "workflow_type": "NFL",
            "workflow_type_version": "DSL2",
            "workflow_url": "nf-core/demo",
        },
    )
    assert response.status_code == 400


def test_comparison_does_not_depend_on_which_part_is_wrong(db, alice):
    """An unknown id and a wrong secret take the same path through a constant-time compare."""
    token = alice["Authorization"].split()[1]
    token_id, secret = tokens.parse_token(token)
    with db.session() as session:
        assert tokens.authenticate(session, token) is not None
        assert tokens.authenticate(session, tokens.format_token("x" * 12, secret)) is None
        assert tokens.authenticate(session, tokens.format_token(token_id, "0" * 48)) is None
        assert session.execute(select(ApiToken)).first() is not None


@pytest.mark.parametrize(
    "name", ["alice", "a", "ops.team_2-x", "fuzzer", "state-owner", "U" * 40, "0day"]
)
def test_user_names_that_are_accepted(db, name):
    with db.session() as session:
        assert tokens.ensure_user(session, name).name == name


@pytest.mark.parametrize(
    "name",
    ["", " ", "a b", "-x", ".hidden", "_x", "U" * 41, "alice\n", "al/ice", "ali@ce", "é", None],
)
def test_user_names_outside_the_pattern_make_no_user(db, name):
    """One pattern, checked where every user is made: ``^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$``."""
    with db.session() as session, pytest.raises(InvalidField) as refused:
        tokens.ensure_user(session, name)
    assert refused.value.message.startswith("userName: must be 1 to 40 letters")
    with db.session() as session:
        assert session.execute(select(User)).first() is None


@pytest.mark.backing_independent
def test_provider_user_names_that_do_not_fit_are_mapped_apart():
    assert identities.user_name_for_claim("alice.sso") == "alice.sso"
    assert identities.user_name_for_claim("Ann Lee") == "Ann-Lee-a36e143c"
    assert identities.user_name_for_claim("ann@example.org") == "ann-example.org-438c4c7a"
    # Two claims that read alike once mapped stay two users; every result is a user name.
    assert identities.user_name_for_claim("a b") != identities.user_name_for_claim("a-b")
    for claim in ("é", "@@@", "x" * 200, "-lead", "a b c " * 20):
        assert tokens.USER_NAME.fullmatch(identities.user_name_for_claim(claim)), claim
