"""Organizations, workspaces, members and participants in Seqera's shapes: every answer
of these operations validates against Seqera's published spec (tests/oracle/seqera.py),
and runs are shared inside a workspace and hidden outside it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from wes_gateway.domain.models import Run

API = "/api"


def user_id(client, headers) -> int:
    return client.get(f"{API}/user-info", headers=headers).json()["user"]["id"]


def create_org(client, headers, name="acme") -> int:
    response = client.post(
        f"{API}/orgs",
        headers=headers,
        json={"organization": {"name": name, "fullName": f"{name} Inc."}},
    )
    assert response.status_code == 200, response.text
    return response.json()["organization"]["orgId"]


def create_workspace(client, headers, org_id, name="lab", visibility="PRIVATE") -> int:
    response = client.post(
        f"{API}/orgs/{org_id}/workspaces",
        headers=headers,
        json={"workspace": {"name": name, "fullName": f"The {name}", "visibility": visibility}},
    )
    assert response.status_code == 200, response.text
    return response.json()["workspace"]["id"]


def add_participant(client, headers, org_id, ws_id, user_name, role) -> int:
    """tw's way: the member looked up by name, added, then given the role."""
    response = client.put(
        f"{API}/orgs/{org_id}/workspaces/{ws_id}/participants/add",
        headers=headers,
        json={"userNameOrEmail": user_name},
    )
    assert response.status_code == 200, response.text
    participant = response.json()["participant"]
    assert participant["wspRole"] == "launch"
    if role != "launch":
        response = client.put(
            f"{API}/orgs/{org_id}/workspaces/{ws_id}/participants/"
            f"{participant['participantId']}/role",
            headers=headers,
            json={"role": role},
        )
        assert response.status_code == 204, response.text
    return participant["participantId"]


def launch(client, headers, ws_id: int | None) -> httpx.Response:
    params = {"workspaceId": ws_id} if ws_id is not None else {}
    return client.post(
        f"{API}/workflow/launch",
        headers=headers,
        params=params,
        json={"launch": {"pipeline": "nf-core/demo"}},
    )


def run_ids(client, headers, ws_id: int | None) -> list[str]:
    params: dict[str, Any] = {"includeTotalSize": "true"}
    if ws_id is not None:
        params["workspaceId"] = ws_id
    response = client.get(f"{API}/workflow", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return sorted(entry["workflow"]["id"] for entry in response.json()["workflows"])


def test_service_info_is_public_and_answers_as_current_tw_requires(tower):
    response = tower.get(f"{API}/service-info")
    assert response.status_code == 200, response.text
    info = response.json()["serviceInfo"]
    version = tuple(int(part) for part in info["apiVersion"].split("."))
    assert version >= (1, 198, 0)
    assert info["version"] and info["authTypes"] and info["loginPath"]
    assert isinstance(info["allowInstanceCredentials"], bool)


def test_done_means(tower, make_user):
    """A newcomer makes an organization and a workspace and adds a second user as launch:
    both see the same runs. A view participant sees them and cannot launch. A user of
    another workspace sees nothing."""
    ann, ben, cat, dan = (make_user(name) for name in ("ann", "ben", "cat", "dan"))
    org = create_org(tower, ann)
    ws = create_workspace(tower, ann, org)
    add_participant(tower, ann, org, ws, "ben", "launch")
    add_participant(tower, ann, org, ws, "cat", "view")
    other_org = create_org(tower, dan, "elsewhere")
    other_ws = create_workspace(tower, dan, other_org, "bench")

    response = launch(tower, ben, ws)
    assert response.status_code == 200, response.text
    bens = response.json()["workflowId"]
    anns = launch(tower, ann, ws).json()["workflowId"]
    dans = launch(tower, dan, other_ws).json()["workflowId"]

    assert run_ids(tower, ann, ws) == run_ids(tower, ben, ws) == sorted([anns, bens])
    assert run_ids(tower, cat, ws) == sorted([anns, bens])
    refused = launch(tower, cat, ws)
    assert refused.status_code == 403, refused.text
    assert refused.json()["message"].startswith("workspaceId:")
    # The workspace's runs are not in anyone's personal workspace, nor in dan's.
    assert run_ids(tower, ann, None) == [] and run_ids(tower, ben, None) == []
    assert run_ids(tower, dan, other_ws) == [dans]
    assert tower.get(f"{API}/workflow", headers=dan, params={"workspaceId": ws}).status_code == 403
    # Named from a workspace dan is in, ann's run is as a run that does not exist.
    theirs = tower.get(f"{API}/workflow/{anns}", headers=dan, params={"workspaceId": other_ws})
    ghost = tower.get(f"{API}/workflow/{'x' * 14}", headers=dan, params={"workspaceId": other_ws})
    assert theirs.status_code == ghost.status_code == 404
    assert theirs.json()["message"].replace(anns, "?") == ghost.json()["message"].replace(
        "x" * 14, "?"
    )
    # dan sees neither the organization nor the workspace.
    assert tower.get(f"{API}/orgs/{org}", headers=dan).status_code == 403
    places = tower.get(f"{API}/user/{user_id(tower, dan)}/workspaces", headers=dan).json()
    assert {entry["orgName"] for entry in places["orgsAndWorkspaces"]} == {"elsewhere"}


def test_user_workspaces_lists_orgs_and_the_workspaces_with_roles(tower, make_user):
    ann, ben = make_user("ann"), make_user("ben")
    org = create_org(tower, ann)
    ws = create_workspace(tower, ann, org, visibility="SHARED")
    create_workspace(tower, ann, org, "private")
    add_participant(tower, ann, org, ws, "ben", "maintain")
    response = tower.get(f"{API}/user/{user_id(tower, ben)}/workspaces", headers=ben)
    assert response.status_code == 200, response.text
    assert response.json()["orgsAndWorkspaces"] == [
        {"orgId": org, "orgName": "acme", "roles": ["collaborator"]},
        {
            "orgId": org,
            "orgName": "acme",
            "roles": ["maintain"],
            "workspaceId": ws,
            "workspaceName": "lab",
            "workspaceFullName": "The lab",
            "visibility": "SHARED",
        },
    ]
    # Another user's list is theirs to read.
    theirs = tower.get(f"{API}/user/{user_id(tower, ann)}/workspaces", headers=ben)
    assert theirs.status_code == 403


def test_org_and_workspace_crud(tower, make_user):
    ann, ben = make_user("ann"), make_user("ben")
    org = create_org(tower, ann)
    listed = tower.get(f"{API}/orgs", headers=ann).json()
    assert listed["totalSize"] == 1 and listed["organizations"][0]["memberRole"] == "owner"
    assert tower.get(f"{API}/orgs", headers=ben).json() == {"organizations": [], "totalSize": 0}
    update = {"fullName": "Acme Labs", "location": "Basel", "website": "https://acme.example"}
    assert tower.put(f"{API}/orgs/{org}", headers=ann, json=update).status_code == 204
    described = tower.get(f"{API}/orgs/{org}", headers=ann).json()["organization"]
    assert described["fullName"] == "Acme Labs" and described["location"] == "Basel"
    assert tower.put(f"{API}/orgs/{org}", headers=ben, json=update).status_code == 403

    ws = create_workspace(tower, ann, org)
    assert tower.get(f"{API}/orgs/{org}/workspaces", headers=ann).json()["workspaces"] == [
        {"id": ws, "name": "lab", "fullName": "The lab", "visibility": "PRIVATE"}
    ]
    response = tower.put(
        f"{API}/orgs/{org}/workspaces/{ws}",
        headers=ann,
        json={"description": "wet lab", "visibility": "SHARED"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["workspace"]["visibility"] == "SHARED"
    again = tower.post(
        f"{API}/orgs/{org}/workspaces",
        headers=ann,
        json={"workspace": {"name": "lab", "fullName": "dup", "visibility": "PRIVATE"}},
    )
    assert again.status_code == 409
    run = launch(tower, ann, ws).json()["workflowId"]
    held = tower.delete(f"{API}/orgs/{org}/workspaces/{ws}", headers=ann)
    assert held.status_code == 400 and held.json()["message"].startswith("workspaceId:")
    deleted = tower.delete(
        f"{API}/workflow/{run}", headers=ann, params={"workspaceId": ws, "force": "true"}
    )
    assert deleted.status_code == 204
    # The deleted run's row stays until the workers purge it.
    assert tower.delete(f"{API}/orgs/{org}/workspaces/{ws}", headers=ann).status_code in (204, 400)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"organization": {"name": "a", "fullName": "x"}}, "organization.name"),
        ({"organization": {"name": "bad name", "fullName": "x"}}, "organization.name"),
        ({"organization": {"name": "a--b", "fullName": "x"}}, "organization.name"),
        ({"organization": {"name": "good"}}, "organization.fullName"),
        ({}, "organization"),
    ],
)
def test_bad_organizations_are_a_400_naming_the_field(tower, alice, body, field):
    response = tower.post(f"{API}/orgs", headers=alice, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(field)


def test_bad_workspace_and_role_are_a_400_naming_the_field(tower, make_user):
    ann = make_user("ann")
    make_user("ben")
    org = create_org(tower, ann)
    bad = tower.post(
        f"{API}/orgs/{org}/workspaces",
        headers=ann,
        json={"workspace": {"name": "-x", "fullName": "x", "visibility": "PRIVATE"}},
    )
    assert bad.status_code == 400 and bad.json()["message"].startswith("workspace.name")
    ws = create_workspace(tower, ann, org)
    pid = add_participant(tower, ann, org, ws, "ben", "launch")
    role = tower.put(
        f"{API}/orgs/{org}/workspaces/{ws}/participants/{pid}/role",
        headers=ann,
        json={"role": "superuser"},
    )
    assert role.status_code == 400 and role.json()["message"].startswith("role")


def test_members_add_list_role_remove(tower, make_user):
    ann, ben = make_user("ann"), make_user("ben")
    org = create_org(tower, ann)
    added = tower.put(f"{API}/orgs/{org}/members/add", headers=ann, json={"user": "ben"})
    assert added.status_code == 200, added.text
    member = added.json()["member"]
    assert member["userName"] == "ben" and member["role"] == "member"
    listed = tower.get(f"{API}/orgs/{org}/members", headers=ben, params={"search": "be"}).json()
    assert [m["userName"] for m in listed["members"]] == ["ben"] and listed["totalSize"] == 1
    assert (
        tower.put(f"{API}/orgs/{org}/members/add", headers=ben, json={"user": "ann"}).status_code
        == 403
    )
    path = f"{API}/orgs/{org}/members/{member['memberId']}"
    assert tower.put(f"{path}/role", headers=ann, json={"role": "owner"}).status_code == 204
    assert tower.delete(path, headers=ann).status_code == 204
    assert tower.get(f"{API}/orgs/{org}/members", headers=ben).status_code == 403
    # The last owner stays.
    (owner,) = tower.get(f"{API}/orgs/{org}/members", headers=ann).json()["members"]
    assert (
        tower.delete(f"{API}/orgs/{org}/members/{owner['memberId']}", headers=ann).status_code
        == 400
    )


def test_a_workspace_compute_environment_is_its_own(tower, make_user, admin):
    ann, ben = make_user("ann"), make_user("ben")
    org = create_org(tower, ann)
    ws = create_workspace(tower, ann, org)
    add_participant(tower, ann, org, ws, "ben", "launch")
    body = {"computeEnv": {"name": "lab-local", "platform": "local-platform"}}
    made = tower.post(f"{API}/compute-envs", headers=ann, params={"workspaceId": ws}, json=body)
    assert made.status_code == 200, made.text
    env = made.json()["computeEnvId"]
    assert (
        tower.post(
            f"{API}/compute-envs", headers=ben, params={"workspaceId": ws}, json=body
        ).status_code
        == 403
    )
    in_ws = tower.get(f"{API}/compute-envs", headers=ben, params={"workspaceId": ws}).json()
    assert env in {entry["id"] for entry in in_ws["computeEnvs"]}
    personal = tower.get(f"{API}/compute-envs", headers=ben).json()
    assert env not in {entry["id"] for entry in personal["computeEnvs"]}
    assert tower.get(f"{API}/compute-envs/{env}", headers=ben).status_code == 404
    # Launching on it outside its workspace: the field is named.
    outside = tower.post(
        f"{API}/workflow/launch",
        headers=ben,
        json={"launch": {"pipeline": "nf-core/demo", "computeEnvId": env}},
    )
    assert outside.status_code == 400 and outside.json()["message"].startswith(
        "launch.computeEnvId"
    )
    inside = tower.post(
        f"{API}/workflow/launch",
        headers=ben,
        params={"workspaceId": ws},
        json={"launch": {"pipeline": "nf-core/demo", "computeEnvId": env}},
    )
    assert inside.status_code == 200, inside.text


def test_service_administrators_keep_their_global_view(tower, make_user, admin):
    ann = make_user("ann")
    org = create_org(tower, ann)
    ws = create_workspace(tower, ann, org)
    run = launch(tower, ann, ws).json()["workflowId"]
    assert run in run_ids(tower, admin, None)
    assert run_ids(tower, admin, ws) == [run]


def test_wes_submits_to_a_workspace_and_lists_it(client, make_user):
    ann, ben = make_user("ann"), make_user("ben")
    org = create_org(client, ann)
    ws = create_workspace(client, ann, org)
    add_participant(client, ann, org, ws, "ben", "view")
    fields = {
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "workflow_url": "nf-core/demo",
        "workflow_engine_parameters": f'{{"workspaceId": "{ws}"}}',
    }
    files = [("workflow_attachment", ("note.txt", b"x"))]
    response = client.post("/ga4gh/wes/v1/runs", headers=ann, data=fields, files=files)
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]
    listed = client.get("/ga4gh/wes/v1/runs", headers=ben, params={"workspace_id": ws})
    assert [run["run_id"] for run in listed.json()["runs"]] == [run_id]
    assert client.get("/ga4gh/wes/v1/runs", headers=ann).json()["runs"] == []
    # A view participant cannot submit there; a stranger cannot list it.
    refused = client.post("/ga4gh/wes/v1/runs", headers=ben, data=fields, files=files)
    assert refused.status_code == 403, refused.text
    stranger = make_user("cy")
    assert (
        client.get("/ga4gh/wes/v1/runs", headers=stranger, params={"workspace_id": ws}).status_code
        == 403
    )
    # The Tower view of the same workspace holds the same run.
    assert run_ids(client, ben, ws) == [run_id]
    bad = dict(fields, workflow_engine_parameters='{"workspaceId": "zero"}')
    response = client.post("/ga4gh/wes/v1/runs", headers=ann, data=bad, files=files)
    assert response.status_code == 400
    assert response.json()["msg"].startswith("workflow_engine_parameters.workspaceId")


@pytest.mark.parametrize("user_id", [2**31, 2**63 - 2, 987654])
def test_the_workspaces_of_a_user_that_does_not_exist_are_a_404(client, admin, user_id):
    """An administrator may name any user id Seqera's int64 allows; one that is no user,
    however large, is a 404 naming userId (never a database error)."""
    answer = client.get(f"/api/user/{user_id}/workspaces", headers=admin)
    assert answer.status_code == 404, answer.text
    assert answer.json()["message"].startswith("userId:")


def test_wes_calls_on_a_workspace_run_follow_the_caller_s_role_there(client, make_user):
    """WES's per-run calls name no workspace: the run's own decides. A participant
    reads it as their role allows, anyone else finds no such run."""
    ann, ben, cy, dee = (make_user(name) for name in ("ann", "ben", "cy", "dee"))
    org = create_org(client, ann)
    ws = create_workspace(client, ann, org)
    add_participant(client, ann, org, ws, "ben", "view")
    add_participant(client, ann, org, ws, "cy", "launch")
    fields = {
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "workflow_url": "nf-core/demo",
        "workflow_engine_parameters": f'{{"workspaceId": {ws}}}',
    }
    submitted = client.post("/ga4gh/wes/v1/runs", headers=ann, data=fields)
    assert submitted.status_code == 200, submitted.text
    run = f"/ga4gh/wes/v1/runs/{submitted.json()['run_id']}"
    for who in (ann, ben, cy):
        log = client.get(run, headers=who)
        assert log.status_code == 200, log.text
        assert log.json()["workspace_id"] == ws
        assert client.get(f"{run}/status", headers=who).json()["state"] == "QUEUED"
        assert client.get(f"{run}/tasks", headers=who).json()["task_logs"] == []
        assert client.get(f"{run}/stderr", headers=who).status_code == 200
    for path in ("", "/status", "/tasks", "/stdout", "/stderr"):
        hidden = client.get(f"{run}{path}", headers=dee)
        assert hidden.status_code == 404, (path, hidden.text)
    assert client.post(f"{run}/cancel", headers=dee).status_code == 404
    refused = client.post(f"{run}/cancel", headers=ben)  # view cannot cancel
    assert refused.status_code == 403, refused.text
    assert refused.json()["msg"].startswith("workspaceId:")
    assert client.get(f"{run}/status", headers=ann).json()["state"] == "QUEUED"
    cancelled = client.post(f"{run}/cancel", headers=cy)
    assert cancelled.status_code == 200, cancelled.text
    assert client.get(f"{run}/status", headers=ben).json()["state"] == "CANCELED"
    # A personal run carries no workspace and stays its owner's alone.
    personal = dict(fields, workflow_engine_parameters="{}")
    mine = client.post("/ga4gh/wes/v1/runs", headers=ben, data=personal).json()["run_id"]
    assert "workspace_id" not in client.get(f"/ga4gh/wes/v1/runs/{mine}", headers=ben).json()
    assert client.get(f"/ga4gh/wes/v1/runs/{mine}", headers=ann).status_code == 404


def test_a_workspace_shows_one_primary_compute_environment(tower, make_user):
    """The workspace's own primary, once it has one, is the only one shown primary
    there (and is where runs that name none go); elsewhere the global one stays."""
    ann = make_user("ann")
    org = create_org(tower, ann)
    ws = create_workspace(tower, ann, org)

    def primaries(params):
        listed = tower.get(f"{API}/compute-envs", headers=ann, params=params).json()
        return [env["name"] for env in listed["computeEnvs"] if env["primary"]]

    assert primaries({"workspaceId": ws}) == ["local"]
    body = {"computeEnv": {"name": "lab-local", "platform": "local-platform"}}
    env = tower.post(
        f"{API}/compute-envs", headers=ann, params={"workspaceId": ws}, json=body
    ).json()["computeEnvId"]
    made = tower.post(f"{API}/compute-envs/{env}/primary", headers=ann, params={"workspaceId": ws})
    assert made.status_code == 204, made.text
    assert primaries({"workspaceId": ws}) == ["lab-local"]
    assert primaries({}) == ["local"]
    described = tower.get(
        f"{API}/compute-envs/{env}", headers=ann, params={"workspaceId": ws}
    ).json()["computeEnv"]
    assert described["primary"] is True and described["workspaceId"] == ws
    local = next(
        e["id"]
        for e in tower.get(f"{API}/compute-envs", headers=ann).json()["computeEnvs"]
        if e["name"] == "local"
    )
    in_ws = tower.get(
        f"{API}/compute-envs/{local}", headers=ann, params={"workspaceId": ws}
    ).json()["computeEnv"]
    assert in_ws["primary"] is False
    run = launch(tower, ann, ws).json()["workflowId"]
    launched = tower.get(f"{API}/workflow/{run}/launch", headers=ann, params={"workspaceId": ws})
    assert launched.json()["launch"]["computeEnv"]["id"] == env


def test_members_see_the_shared_workspaces_and_their_own(tower, make_user):
    ann, ben, cy = make_user("ann"), make_user("ben"), make_user("cy")
    org = create_org(tower, ann)
    create_workspace(tower, ann, org, "open", "SHARED")
    create_workspace(tower, ann, org, "closed", "PRIVATE")
    mine = create_workspace(tower, ann, org, "bens", "PRIVATE")
    tower.put(f"{API}/orgs/{org}/members/add", headers=ann, json={"user": "ben"})
    add_participant(tower, ann, org, mine, "ben", "view")
    add_participant(tower, ann, org, mine, "cy", "view")  # cy: a collaborator

    def names(who):
        answer = tower.get(f"{API}/orgs/{org}/workspaces", headers=who)
        assert answer.status_code == 200, answer.text
        return sorted(ws["name"] for ws in answer.json()["workspaces"])

    assert names(ann) == ["bens", "closed", "open"]
    assert names(ben) == ["bens", "open"]
    assert names(cy) == ["bens"]


def test_a_workspace_run_s_outputs_are_read_as_its_log_is(client, make_user, db, run_dir):
    """A view participant reads a listed output of a workspace run; anyone else finds no
    such run."""
    ann, ben, dee = (make_user(name) for name in ("ann", "ben", "dee"))
    org = create_org(client, ann)
    ws = create_workspace(client, ann, org)
    add_participant(client, ann, org, ws, "ben", "view")
    fields = {
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "workflow_url": "nf-core/demo",
        "workflow_params": '{"outdir": "results"}',
        "workflow_engine_parameters": f'{{"workspaceId": {ws}}}',
    }
    run_id = client.post("/ga4gh/wes/v1/runs", headers=ann, data=fields).json()["run_id"]
    published = run_dir(run_id) / "launch" / "results" / "report.txt"
    published.parent.mkdir(parents=True)
    published.write_text("the lab's report")
    with db.session() as session:  # as the worker lists it when the run ends
        run = session.get(Run, run_id)
        run.outputs = {"report.txt": {"location": str(published.resolve()), "size": 16}}
        run.outputs_truncated = False
    url = f"/ga4gh/wes/v1/runs/{run_id}/outputs/report.txt"
    for who in (ann, ben):
        answer = client.get(url, headers=who)
        assert answer.status_code == 200 and answer.text == "the lab's report"
    hidden = client.get(url, headers=dee)
    assert hidden.status_code == 404 and "the lab's" not in hidden.text
