"""Teams of an organization in Seqera's shapes (every answer checked against Seqera's
spec by the `tower` fixture): owners manage them, members read them, and a team taking
part in a workspace gives each of its members the team's role there, no more and no
longer than they are in it."""

from __future__ import annotations

from tests.http.test_tenancy import create_org, create_workspace, launch, run_ids

API = "/api"


def create_team(client, headers, org, name="bio", description=None) -> int:
    team = {"name": name}
    if description is not None:
        team["description"] = description
    response = client.post(f"{API}/orgs/{org}/teams", headers=headers, json={"team": team})
    assert response.status_code == 200, response.text
    return response.json()["team"]["teamId"]


def add_team_member(client, headers, org, team, user) -> dict:
    response = client.post(
        f"{API}/orgs/{org}/teams/{team}/members",
        headers=headers,
        json={"userNameOrEmail": user},
    )
    assert response.status_code == 200, response.text
    return response.json()["member"]


def test_an_owner_creates_describes_renames_and_deletes_a_team(tower, make_user):
    ann = make_user("ann")
    org = create_org(tower, ann)
    team = create_team(tower, ann, org, "bio", "The biologists")
    described = tower.get(f"{API}/orgs/{org}/teams/{team}", headers=ann).json()["team"]
    assert described == {
        "teamId": team,
        "name": "bio",
        "description": "The biologists",
        "membersCount": 0,
    }
    renamed = tower.put(
        f"{API}/orgs/{org}/teams/{team}",
        headers=ann,
        json={"name": "biology", "description": "Wet lab"},
    )
    assert renamed.status_code == 204, renamed.text
    listed = tower.get(f"{API}/orgs/{org}/teams", headers=ann).json()
    assert listed["totalSize"] == 1
    assert [(t["name"], t["description"]) for t in listed["teams"]] == [("biology", "Wet lab")]
    assert tower.delete(f"{API}/orgs/{org}/teams/{team}", headers=ann).status_code == 204
    assert tower.get(f"{API}/orgs/{org}/teams", headers=ann).json() == {
        "teams": [],
        "totalSize": 0,
    }
    gone = tower.get(f"{API}/orgs/{org}/teams/{team}", headers=ann)
    assert gone.status_code == 400 and gone.json()["message"].startswith("teamId:")


def test_team_names_follow_seqera_s_rule_and_are_unique_in_the_organization(tower, make_user):
    ann = make_user("ann")
    org = create_org(tower, ann)
    create_team(tower, ann, org, "bio")
    validate = f"{API}/orgs/{org}/teams/validate"
    assert tower.get(validate, headers=ann, params={"name": "chem"}).status_code == 204
    taken = tower.get(validate, headers=ann, params={"name": "BIO"})
    assert taken.status_code == 400 and "already exists" in taken.json()["message"]
    bad = tower.get(validate, headers=ann, params={"name": "-x"})
    assert bad.status_code == 400 and bad.json()["message"].startswith("name:")
    twice = tower.post(f"{API}/orgs/{org}/teams", headers=ann, json={"team": {"name": "bio"}})
    assert twice.status_code == 409, twice.text
    nameless = tower.post(f"{API}/orgs/{org}/teams", headers=ann, json={"team": {}})
    assert nameless.status_code == 400 and nameless.json()["message"].startswith("team.name")
    long = tower.post(
        f"{API}/orgs/{org}/teams",
        headers=ann,
        json={"team": {"name": "chem", "description": "x" * 251}},
    )
    assert long.status_code == 400 and long.json()["message"].startswith("team.description")
    other = create_team(tower, ann, org, "chem")
    clash = tower.put(f"{API}/orgs/{org}/teams/{other}", headers=ann, json={"name": "bio"})
    assert clash.status_code == 409, clash.text


def test_team_members_join_the_organization_and_leave_the_team_only(tower, make_user):
    ann, cy = make_user("ann"), make_user("cy")
    make_user("ben")
    org = create_org(tower, ann)
    tower.put(f"{API}/orgs/{org}/members/add", headers=ann, json={"user": "ben"})
    team = create_team(tower, ann, org)
    ben_member = add_team_member(tower, ann, org, team, "ben")
    cy_member = add_team_member(tower, ann, org, team, "cy")
    assert (cy_member["userName"], cy_member["role"]) == ("cy", "member")
    members = tower.get(f"{API}/orgs/{org}/teams/{team}/members", headers=ann).json()
    assert members["totalSize"] == 2
    assert [m["userName"] for m in members["members"]] == ["ben", "cy"]
    searched = tower.get(
        f"{API}/orgs/{org}/teams/{team}/members", headers=cy, params={"search": "b"}
    ).json()
    assert [m["userName"] for m in searched["members"]] == ["ben"]
    again = tower.post(
        f"{API}/orgs/{org}/teams/{team}/members", headers=ann, json={"userNameOrEmail": "ben"}
    )
    assert again.status_code == 400 and "already a member" in again.json()["message"]
    nobody = tower.post(
        f"{API}/orgs/{org}/teams/{team}/members", headers=ann, json={"userNameOrEmail": "zed"}
    )
    assert nobody.status_code == 400 and nobody.json()["message"].startswith("userNameOrEmail")
    removed = tower.delete(
        f"{API}/orgs/{org}/teams/{team}/members/{ben_member['memberId']}/delete", headers=ann
    )
    assert removed.status_code == 204, removed.text
    members = tower.get(f"{API}/orgs/{org}/teams/{team}/members", headers=ann).json()
    assert [m["userName"] for m in members["members"]] == ["cy"]
    org_members = tower.get(f"{API}/orgs/{org}/members", headers=ann).json()["members"]
    assert sorted(m["userName"] for m in org_members) == ["ann", "ben", "cy"]
    described = tower.get(f"{API}/orgs/{org}/teams/{team}", headers=ann).json()["team"]
    assert described["membersCount"] == 1


def test_only_owners_manage_teams_members_read_them_others_see_nothing(tower, make_user):
    ann, ben, cy, dee = (make_user(n) for n in ("ann", "ben", "cy", "dee"))
    org = create_org(tower, ann)
    ws = create_workspace(tower, ann, org)
    tower.put(f"{API}/orgs/{org}/members/add", headers=ann, json={"user": "ben"})
    tower.put(
        f"{API}/orgs/{org}/workspaces/{ws}/participants/add",
        headers=ann,
        json={"userNameOrEmail": "cy"},
    )  # cy: a collaborator
    team = create_team(tower, ann, org)
    assert tower.get(f"{API}/orgs/{org}/teams", headers=ben).status_code == 200
    for who in (ben, cy, dee):
        made = tower.post(f"{API}/orgs/{org}/teams", headers=who, json={"team": {"name": "x"}})
        assert made.status_code == 403, made.text
        renamed = tower.put(f"{API}/orgs/{org}/teams/{team}", headers=who, json={"name": "y"})
        assert renamed.status_code == 403
        deleted = tower.delete(f"{API}/orgs/{org}/teams/{team}", headers=who)
        assert deleted.status_code == 403
        joined = tower.post(
            f"{API}/orgs/{org}/teams/{team}/members", headers=who, json={"userNameOrEmail": "dee"}
        )
        assert joined.status_code == 403
    for who in (cy, dee):
        assert tower.get(f"{API}/orgs/{org}/teams", headers=who).status_code == 403
        assert tower.get(f"{API}/orgs/{org}/teams/{team}", headers=who).status_code == 403
    assert tower.get(f"{API}/orgs/{org}/teams/{team}", headers=ann).json()["team"]["name"] == "bio"


def test_a_team_in_a_workspace_shares_its_runs_with_each_member(tower, make_user):
    ann, ben = make_user("ann"), make_user("ben")
    org = create_org(tower, ann)
    ws = create_workspace(tower, ann, org)
    team = create_team(tower, ann, org)
    ben_member = add_team_member(tower, ann, org, team, "ben")
    run = launch(tower, ann, ws).json()["workflowId"]
    assert tower.get(f"{API}/workflow", headers=ben, params={"workspaceId": ws}).status_code == 403

    added = tower.put(
        f"{API}/orgs/{org}/workspaces/{ws}/participants/add", headers=ann, json={"teamId": team}
    )
    assert added.status_code == 200, added.text
    participant = added.json()["participant"]
    assert (participant["type"], participant["teamName"], participant["wspRole"]) == (
        "TEAM",
        "bio",
        "launch",
    )
    assert run_ids(tower, ben, ws) == [run]
    assert launch(tower, ben, ws).status_code == 200  # the team's role: launch
    places = tower.get(f"{API}/orgs/{org}/teams/{team}/workspaces", headers=ann).json()
    assert places["totalSize"] == 1
    assert places["workspaces"] == [
        {
            "orgId": org,
            "orgName": "acme",
            "workspaceId": ws,
            "workspaceName": "lab",
            "workspaceFullName": "The lab",
            "participantId": participant["participantId"],
            "participantRole": "launch",
        }
    ]
    role = tower.put(
        f"{API}/orgs/{org}/workspaces/{ws}/participants/{participant['participantId']}/role",
        headers=ann,
        json={"role": "view"},
    )
    assert role.status_code == 204
    assert launch(tower, ben, ws).status_code == 403  # view cannot launch
    assert len(run_ids(tower, ben, ws)) == 2

    # Out of the team, out of the workspace.
    tower.delete(
        f"{API}/orgs/{org}/teams/{team}/members/{ben_member['memberId']}/delete", headers=ann
    )
    assert tower.get(f"{API}/workflow", headers=ben, params={"workspaceId": ws}).status_code == 403
    add_team_member(tower, ann, org, team, "ben")
    assert len(run_ids(tower, ben, ws)) == 2
    # A deleted team takes its place in the workspace with it.
    assert tower.delete(f"{API}/orgs/{org}/teams/{team}", headers=ann).status_code == 204
    assert tower.get(f"{API}/workflow", headers=ben, params={"workspaceId": ws}).status_code == 403
    participants = tower.get(f"{API}/orgs/{org}/workspaces/{ws}/participants", headers=ann).json()[
        "participants"
    ]
    assert participants == []


def test_the_members_of_a_deleted_organization_join_no_later_one(tower, make_user):
    """An organization's members, teams and participants go with it: a later
    organization (which may get the same id) has none of them."""
    ann, ben, cy = make_user("ann"), make_user("ben"), make_user("cy")
    org = create_org(tower, ann, "old")
    ws = create_workspace(tower, ann, org)
    tower.put(f"{API}/orgs/{org}/members/add", headers=ann, json={"user": "ben"})
    team = create_team(tower, ann, org)
    add_team_member(tower, ann, org, team, "ben")
    tower.put(
        f"{API}/orgs/{org}/workspaces/{ws}/participants/add", headers=ann, json={"teamId": team}
    )
    assert tower.delete(f"{API}/orgs/{org}", headers=ann).status_code == 204

    new = create_org(tower, cy, "new")
    new_ws = create_workspace(tower, cy, new)
    assert tower.get(f"{API}/orgs/{new}", headers=ben).status_code == 403
    assert tower.get(f"{API}/orgs/{new}", headers=ann).status_code == 403
    assert (
        tower.get(f"{API}/workflow", headers=ben, params={"workspaceId": new_ws}).status_code == 403
    )
    ben_id = tower.get(f"{API}/user-info", headers=ben).json()["user"]["id"]
    assert tower.get(f"{API}/user/{ben_id}/workspaces", headers=ben).json() == {
        "orgsAndWorkspaces": []
    }
    members = tower.get(f"{API}/orgs/{new}/members", headers=cy).json()["members"]
    assert [m["userName"] for m in members] == ["cy"]
    assert tower.get(f"{API}/orgs/{new}/teams", headers=cy).json()["teams"] == []


def test_a_removed_member_leaves_their_workspaces_and_teams(tower, make_user):
    ann = make_user("ann")
    make_user("ben")
    org = create_org(tower, ann)
    ws = create_workspace(tower, ann, org)
    team = create_team(tower, ann, org)
    member = add_team_member(tower, ann, org, team, "ben")
    tower.put(
        f"{API}/orgs/{org}/workspaces/{ws}/participants/add",
        headers=ann,
        json={"userNameOrEmail": "ben"},
    )
    assert (
        tower.delete(f"{API}/orgs/{org}/members/{member['memberId']}", headers=ann).status_code
        == 204
    )
    participants = tower.get(f"{API}/orgs/{org}/workspaces/{ws}/participants", headers=ann).json()[
        "participants"
    ]
    assert participants == []
    assert (
        tower.get(f"{API}/orgs/{org}/teams/{team}", headers=ann).json()["team"]["membersCount"] == 0
    )
