"""The request sequences tw (seqeralabs/tower-cli) makes, replayed call by call as its
commands make them: `tw info`, `tw workspaces list`, `tw organizations list`,
`tw runs list|view|cancel|delete -w <org>/<ws>`, `tw participants list|add`,
`tw members list|add`, `tw teams add|list|members|delete`. A workspace reference
`org/ws` is resolved as AbstractApiCmd does: GET /user-info for the user id, then
GET /user/{userId}/workspaces and the entry whose orgName and workspaceName match.
Every tenancy answer is checked against Seqera's spec (the `tower` fixture)."""

from __future__ import annotations

from tests.http.test_tenancy import add_participant, create_org, create_workspace

API = "/api"


class Tw:
    """What tw's AbstractApiCmd does before a command's own calls."""

    def __init__(self, client, headers):
        self.client, self.headers = client, headers

    def get(self, path, **params):
        response = self.client.get(f"{API}{path}", headers=self.headers, params=params)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    def user_id(self) -> int:
        return self.get("/user-info")["user"]["id"]

    def places(self) -> list[dict]:
        return self.get(f"/user/{self.user_id()}/workspaces")["orgsAndWorkspaces"]

    def workspace(self, ref: str) -> tuple[int, int]:
        org_name, ws_name = ref.split("/")
        (entry,) = [
            e
            for e in self.places()
            if e.get("workspaceName") == ws_name and e.get("orgName") == org_name
        ]
        return entry["orgId"], entry["workspaceId"]

    def organization(self, ref: str) -> int:
        (entry,) = [
            e
            for e in self.places()
            if e.get("workspaceName") is None and ref in (str(e["orgId"]), e["orgName"])
        ]
        return entry["orgId"]


def _world(client, make_user):
    ann, ben = make_user("ann"), make_user("ben")
    org = create_org(client, ann)
    ws = create_workspace(client, ann, org)
    add_participant(client, ann, org, ws, "ben", "launch")
    run = client.post(
        f"{API}/workflow/launch",
        headers=ben,
        params={"workspaceId": ws},
        json={"launch": {"pipeline": "nf-core/demo"}},
    ).json()["workflowId"]
    return ann, ben, org, ws, run


def test_tw_info(tower, alice):
    info = tower.get(f"{API}/service-info").json()["serviceInfo"]
    assert info["apiVersion"] >= "1.198.0" and info["version"]
    assert Tw(tower, alice).get("/user-info")["user"]["userName"] == "alice"


def test_tw_workspaces_list_and_organizations_list(tower, make_user):
    ann, ben, org, ws, _ = _world(tower, make_user)
    places = Tw(tower, ben).places()
    workspaces = [e for e in places if e.get("workspaceId") is not None]
    organizations = [e for e in places if e.get("workspaceId") is None]
    assert [(e["orgName"], e["workspaceName"], e["workspaceFullName"]) for e in workspaces] == [
        ("acme", "lab", "The lab")
    ]
    assert workspaces[0]["visibility"] == "PRIVATE" and workspaces[0]["roles"] == ["launch"]
    assert [(e["orgId"], e["orgName"]) for e in organizations] == [(org, "acme")]


def test_tw_runs_list_view_cancel_delete_in_a_workspace(tower, make_user):
    ann, ben, org, ws, run = _world(tower, make_user)
    tw = Tw(tower, ann)
    assert tw.workspace("acme/lab") == (org, ws)
    # runs list: listWorkflows(attributes, wspId, max, offset, filter, includeTotalSize)
    listed = tw.get("/workflow", workspaceId=ws, includeTotalSize="true")
    assert [w["workflow"]["id"] for w in listed["workflows"]] == [run]
    assert listed["totalSize"] == 1
    # runs view: describeWorkflow (labels), describeWorkflowLaunch, describeWorkflowProgress
    described = tw.get(f"/workflow/{run}", workspaceId=ws, attributes="labels")
    assert described["workflow"]["id"] == run
    assert tw.get(f"/workflow/{run}/launch", workspaceId=ws)["launch"]["pipeline"]
    progress = tw.get(f"/workflow/{run}/progress", workspaceId=ws)["progress"]
    for counter in ("cpuTime", "memoryRss", "readBytes", "writeBytes", "peakCpus", "loadCpus"):
        assert progress["workflowProgress"][counter] is not None, counter
    # runs cancel: cancelWorkflow(id, wspId, null, null)
    cancel = tower.post(f"{API}/workflow/{run}/cancel", headers=ann, params={"workspaceId": ws})
    assert cancel.status_code == 204, cancel.text
    # runs delete: deleteWorkflow(id, wspId, force)
    deleted = tower.delete(f"{API}/workflow/{run}", headers=ann, params={"workspaceId": ws})
    assert deleted.status_code == 204, deleted.text
    assert tw.get("/workflow", workspaceId=ws, includeTotalSize="true")["workflows"] == []


def test_tw_participants_list_and_add(tower, make_user):
    ann, ben, org, ws, _ = _world(tower, make_user)
    make_user("cy")
    tower.put(f"{API}/orgs/{org}/members/add", headers=ann, json={"user": "cy"})
    tw = Tw(tower, ann)
    org_id, ws_id = tw.workspace("acme/lab")
    listed = tw.get(f"/orgs/{org_id}/workspaces/{ws_id}/participants")
    assert [(p["userName"], p["wspRole"], p["type"]) for p in listed["participants"]] == [
        ("ben", "launch", "COLLABORATOR")
    ]
    # participants add -n cy -t MEMBER: the member found by name, then added by memberId.
    (member,) = tw.get(f"/orgs/{org_id}/members", search="cy")["members"]
    added = tower.put(
        f"{API}/orgs/{org_id}/workspaces/{ws_id}/participants/add",
        headers=ann,
        json={"memberId": member["memberId"]},
    )
    assert added.status_code == 200, added.text
    participant = added.json()["participant"]
    assert (participant["userName"], participant["type"], participant["wspRole"]) == (
        "cy",
        "MEMBER",
        "launch",
    )


def test_tw_members_list_and_add(tower, make_user):
    ann, ben, org, ws, _ = _world(tower, make_user)
    make_user("cy")
    tw = Tw(tower, ann)
    org_id = tw.organization("acme")
    assert org_id == org and tw.organization(str(org)) == org
    added = tower.put(f"{API}/orgs/{org_id}/members/add", headers=ann, json={"user": "cy"})
    assert added.status_code == 200, added.text
    members = tw.get(f"/orgs/{org_id}/members")["members"]
    assert sorted((m["userName"], m["role"]) for m in members) == [
        ("ann", "owner"),
        ("ben", "collaborator"),
        ("cy", "member"),
    ]


def test_tw_teams_add_list_members_and_delete(tower, make_user):
    """`tw teams add -n bio -o acme`, `tw teams list -o acme --max 10`,
    `tw teams members -t bio -o acme add -m ben` and `... delete -m ben`,
    `tw teams delete -i <id> -o acme`, each as AbstractTeamsCmd makes its calls."""
    ann, ben, org, ws, _ = _world(tower, make_user)
    tw = Tw(tower, ann)
    org_id = tw.organization("acme")
    created = tower.post(
        f"{API}/orgs/{org_id}/teams",
        headers=ann,
        json={"team": {"name": "bio", "description": None}},
    )
    assert created.status_code == 200, created.text
    listed = tw.get(f"/orgs/{org_id}/teams", max=10, offset=0)
    assert listed["totalSize"] == 1
    (team,) = [t for t in listed["teams"] if t["name"] == "bio"]  # findTeamByName
    team_id = team["teamId"]
    added = tower.post(
        f"{API}/orgs/{org_id}/teams/{team_id}/members",
        headers=ann,
        json={"userNameOrEmail": "ben"},
    )
    assert added.status_code == 200, added.text
    assert added.json()["member"]["userName"] == "ben"
    # members delete: findMemberByUsername (max 25, offset 0, search = the name)
    found = tw.get(f"/orgs/{org_id}/teams/{team_id}/members", max=25, offset=0, search="ben")
    (member,) = [m for m in found["members"] if m["userName"] == "ben"]
    removed = tower.delete(
        f"{API}/orgs/{org_id}/teams/{team_id}/members/{member['memberId']}/delete", headers=ann
    )
    assert removed.status_code == 204, removed.text
    assert tower.delete(f"{API}/orgs/{org_id}/teams/{team_id}", headers=ann).status_code == 204
    assert tw.get(f"/orgs/{org_id}/teams")["teams"] == []
