"""/api/tokens in Seqera's shapes (each answer validated against Seqera's API file), the
calls `nextflow auth login` and `logout` make, and read-only tokens."""

from __future__ import annotations

import base64
import json

import pytest

from tests import seqera_oracle
from tests.conftest import WES, submit


def create(client, headers, name="laptop", **extra):
    response = client.post("/api/tokens", headers=headers, json={"name": name, **extra})
    assert response.status_code == 200, response.text
    seqera_oracle.check("/tokens", "post", 200, response.json())
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_create_answers_the_secret_once_and_the_list_never_shows_it(client, alice):
    made = create(client, alice, "laptop")
    assert made["token"]["name"] == "laptop"
    assert isinstance(made["token"]["id"], int)
    assert "lastUsed" not in made["token"]
    # The new token works, and is the caller's.
    me = client.get("/api/user-info", headers=bearer(made["accessKey"]))
    assert me.status_code == 200
    assert me.json()["user"]["userName"] == "alice"

    listed = client.get("/api/tokens", headers=alice)
    assert listed.status_code == 200, listed.text
    seqera_oracle.check("/tokens", "get", 200, listed.json())
    names = {t["name"]: t for t in listed.json()["tokens"]}
    assert "laptop" in names
    assert names["laptop"]["id"] == made["token"]["id"]
    assert "lastUsed" in names["laptop"]  # used by the user-info call above
    assert made["accessKey"] not in listed.text
    assert all("accessKey" not in t for t in listed.json()["tokens"])


def test_users_list_only_their_own_tokens(client, alice, bob):
    create(client, alice, "alices")
    listed = client.get("/api/tokens", headers=bob).json()["tokens"]
    assert "alices" not in {t["name"] for t in listed}


def test_a_name_is_required_short_and_unique(client, alice):
    missing = client.post("/api/tokens", headers=alice, json={})
    assert missing.status_code == 400
    assert missing.json()["message"].startswith("name")
    long = client.post("/api/tokens", headers=alice, json={"name": "x" * 51})
    assert long.status_code == 400
    assert long.json()["message"].startswith("name")
    bad_scope = client.post("/api/tokens", headers=alice, json={"name": "a", "scope": "root"})
    assert bad_scope.status_code == 400
    assert bad_scope.json()["message"].startswith("scope")
    create(client, alice, "twice")
    again = client.post("/api/tokens", headers=alice, json={"name": "twice"})
    assert again.status_code == 409
    assert "twice" in again.json()["message"]


def test_delete_revokes_one_token(client, alice, bob):
    made = create(client, alice, "short-lived")
    number = made["token"]["id"]
    # Someone else's token is not found for bob.
    assert client.delete(f"/api/tokens/{number}", headers=bob).status_code == 404
    assert client.get("/api/user-info", headers=bearer(made["accessKey"])).status_code == 200
    gone = client.delete(f"/api/tokens/{number}", headers=alice)
    assert gone.status_code == 204
    assert client.get("/api/user-info", headers=bearer(made["accessKey"])).status_code == 401
    assert client.delete(f"/api/tokens/{number}", headers=alice).status_code == 404
    names = {t["name"] for t in client.get("/api/tokens", headers=alice).json()["tokens"]}
    assert "short-lived" not in names
    bad = client.delete("/api/tokens/abc", headers=alice)
    assert bad.status_code == 400
    assert "tokenId" in bad.json()["message"]


def test_an_admin_may_revoke_anyones_token(client, alice, admin):
    made = create(client, alice, "watched")
    assert client.delete(f"/api/tokens/{made['token']['id']}", headers=admin).status_code == 204
    assert client.get("/api/user-info", headers=bearer(made["accessKey"])).status_code == 401


def test_delete_all_revokes_every_token_of_the_caller_only(client, alice, bob):
    one = create(client, alice, "one")
    two = create(client, alice, "two")
    answer = client.delete("/api/tokens/delete-all", headers=alice)
    assert answer.status_code == 204
    for made in (one, two):
        assert client.get("/api/user-info", headers=bearer(made["accessKey"])).status_code == 401
    assert client.get("/api/user-info", headers=alice).status_code == 401
    assert client.get("/api/user-info", headers=bob).status_code == 200


def test_nextflow_auth_login_then_logout(client, alice):
    """As Nextflow's auth command makes them: login POSTs {name} to /tokens with the
    sign-in token and keeps accessKey; logout reads tid from the token's text and
    DELETEs /tokens/<tid> with the token itself, taking 200 or 204 as done."""
    answer = client.post(
        "/api/tokens", headers=alice, json={"name": "nextflow-auth-alice-2026-12-04-08-15"}
    )
    assert answer.status_code == 200
    pat = answer.json()["accessKey"]
    decoded = base64.b64decode(pat).decode()
    tid = json.loads(decoded.split(".", 1)[0])["tid"]
    assert tid == answer.json()["token"]["id"]
    assert client.get("/api/user-info", headers=bearer(pat)).json()["user"]["userName"] == "alice"
    logout = client.delete(f"/api/tokens/{tid}", headers=bearer(pat))
    assert logout.status_code in (200, 204)
    assert client.get("/api/user-info", headers=bearer(pat)).status_code == 401


@pytest.fixture
def reader(client, alice) -> dict[str, str]:
    return bearer(create(client, alice, "reader", scope="read")["accessKey"])


def test_a_read_only_token_reads(client, alice, reader):
    run_id = submit(client, alice)
    assert client.get(f"{WES}/runs/{run_id}", headers=reader).status_code == 200
    assert client.get("/api/workflow", headers=reader).status_code == 200
    listed = client.get("/api/tokens", headers=reader).json()["tokens"]
    assert {t["name"]: t["scope"] for t in listed}["reader"] == "read"


def test_a_read_only_token_may_not_write_on_either_api(client, alice, reader):
    run_id = submit(client, alice)
    refused = [
        client.post(f"{WES}/runs/{run_id}/cancel", headers=reader),
        client.post(
            f"{WES}/runs",
            headers=reader,
            files={"workflow_url": (None, "owner/repo"), "workflow_type": (None, "NFL")},
        ),
        client.post("/api/tokens", headers=reader, json={"name": "escalate"}),
        client.delete("/api/tokens/delete-all", headers=reader),
        client.post(
            "/api/compute-envs",
            headers=reader,
            json={"computeEnv": {"name": "x", "platform": "local-platform", "config": {}}},
        ),
    ]
    for answer in refused:
        assert answer.status_code == 403, (answer.request.url, answer.text)
        body = answer.json()
        message = body.get("message") or body.get("msg")
        assert "scope 'read'" in message
    # Nothing happened.
    assert client.get(f"{WES}/runs/{run_id}/status", headers=alice).json()["state"] != "CANCELING"
    assert client.get("/api/user-info", headers=reader).status_code == 200


def test_a_token_limited_to_a_workspace_acts_there_and_nowhere_else(client, make_user):
    from tests.http.test_tenancy import add_participant, create_org, create_workspace, launch

    ann, ben = make_user("ann"), make_user("ben")
    org = create_org(client, ann)
    lab = create_workspace(client, ann, org, "lab")
    bench = create_workspace(client, ann, org, "bench")
    add_participant(client, ann, org, lab, "ben", "launch")
    add_participant(client, ann, org, bench, "ben", "launch")
    personal = launch(client, ben, None).json()["workflowId"]
    in_bench = launch(client, ann, bench).json()["workflowId"]

    made = create(client, ben, "lab only", workspaceId=lab)
    assert made["token"]["workspaceId"] == lab
    listed = {t["name"]: t for t in client.get("/api/tokens", headers=ben).json()["tokens"]}
    assert listed["lab only"]["workspaceId"] == lab and "workspaceId" not in listed.get(
        "laptop", {}
    )
    limited = bearer(made["accessKey"])

    # Named or not, the workspace is the token's.
    launched = launch(client, limited, None)
    assert launched.status_code == 200, launched.text
    run = launched.json()["workflowId"]
    for params in ({}, {"workspaceId": lab}):
        runs = client.get("/api/workflow", headers=limited, params=params).json()["workflows"]
        assert [w["workflow"]["id"] for w in runs] == [run]
    assert (
        client.get("/api/workflow", headers=ben, params={"workspaceId": lab}).json()["workflows"][
            0
        ]["workflow"]["id"]
        == run
    )
    elsewhere = client.get("/api/workflow", headers=limited, params={"workspaceId": bench})
    assert elsewhere.status_code == 403
    assert elsewhere.json()["message"] == f"workspaceId: this token is limited to workspace {lab}"
    # Its user's other runs are out of its reach, on both APIs.
    for other in (personal, in_bench):
        assert client.get(f"/api/workflow/{other}", headers=limited).status_code in (403, 404)
        assert client.get(f"{WES}/runs/{other}", headers=limited).status_code == 404
        assert client.get(f"{WES}/runs/{other}", headers=ben).status_code in (200, 404)
    assert client.get(f"{WES}/runs/{run}", headers=limited).status_code == 200
    assert [r["run_id"] for r in client.get(f"{WES}/runs", headers=limited).json()["runs"]] == [run]
    # tw resolves workspaces through the user's places: the token shows its own only.
    uid = client.get("/api/user-info", headers=limited).json()["user"]["id"]
    places = client.get(f"/api/user/{uid}/workspaces", headers=limited).json()
    assert [(p["orgId"], p.get("workspaceId")) for p in places["orgsAndWorkspaces"]] == [
        (org, None),
        (org, lab),
    ]
    # It manages no organization, and makes no token wider than itself.
    made_org = client.post(
        "/api/orgs", headers=limited, json={"organization": {"name": "x1", "fullName": "X"}}
    )
    assert made_org.status_code == 403
    assert client.get(f"/api/orgs/{org}/members", headers=limited).status_code == 403
    wider = client.post("/api/tokens", headers=limited, json={"name": "wider"})
    assert wider.status_code == 403 and wider.json()["message"].startswith("workspaceId:")
    same = client.post("/api/tokens", headers=limited, json={"name": "same", "workspaceId": lab})
    assert same.status_code == 200, same.text


def test_a_token_is_limited_only_to_a_workspace_of_its_user(client, make_user):
    from tests.http.test_tenancy import create_org, create_workspace

    ann, ben = make_user("ann"), make_user("ben")
    lab = create_workspace(client, ann, create_org(client, ann))
    refused = client.post("/api/tokens", headers=ben, json={"name": "t", "workspaceId": lab})
    assert refused.status_code == 403 and refused.json()["message"].startswith("workspaceId:")
    bad = client.post("/api/tokens", headers=ben, json={"name": "t", "workspaceId": "lab"})
    assert bad.status_code == 400 and bad.json()["message"].startswith("workspaceId")
    assert "t" not in {t["name"] for t in client.get("/api/tokens", headers=ben).json()["tokens"]}


def test_a_limited_token_goes_with_its_workspace(client, make_user):
    from tests.http.test_tenancy import create_org, create_workspace

    ann = make_user("ann")
    org = create_org(client, ann)
    lab = create_workspace(client, ann, org)
    limited = bearer(create(client, ann, "lab", workspaceId=lab)["accessKey"])
    assert client.get("/api/user-info", headers=limited).status_code == 200
    assert client.delete(f"/api/orgs/{org}/workspaces/{lab}", headers=ann).status_code == 204
    assert client.get("/api/user-info", headers=limited).status_code == 401


def test_a_token_may_end_by_itself(client, alice, db):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from wes_gateway.domain.models import ApiToken

    made = create(client, alice, "week", expiresInDays=7)
    ends = datetime.fromisoformat(made["token"]["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(days=6, hours=23) < ends - datetime.now(UTC) <= timedelta(days=7)
    assert client.get("/api/user-info", headers=bearer(made["accessKey"])).status_code == 200
    with db.session() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.number == made["token"]["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert client.get("/api/user-info", headers=bearer(made["accessKey"])).status_code == 401
    names = {t["name"] for t in client.get("/api/tokens", headers=alice).json()["tokens"]}
    assert "week" not in names
    for days in (0, 3651, "7"):
        bad = client.post("/api/tokens", headers=alice, json={"name": "x", "expiresInDays": days})
        assert bad.status_code == 400 and bad.json()["message"].startswith("expiresInDays"), (
            bad.text
        )
