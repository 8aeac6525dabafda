"""The workspace roles, as a matrix: every operation of our Tower spec is either
workspace-scoped, with the least role ``tenancy.OPERATION_ROLE`` gives it, or named in
NOT_WORKSPACE_SCOPED with the rule it follows instead; and for every scoped operation
and every role, a participant below the operation's role gets Seqera's 403 while one at
or above it is let through (whatever the operation then answers)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import add_tasks
from tests.domain.test_trace import sample
from tests.security.operations import Operation, all_operations
from wes_gateway.domain import tenancy

API = "/api"

# Operations that do not act inside one workspace, and the rule each follows instead.
NOT_WORKSPACE_SCOPED = {
    "Info": "public",
    "UserInfo": "describes the caller",
    "ListWorkspacesUser": "the caller's own list",
    "ListOrganizations": "the caller's organizations",
    "CreateOrganization": "any user; they become its owner",
    "DescribeOrganization": "org members",
    "UpdateOrganization": "org owners",
    "DeleteOrganization": "org owners",
    "ListOrganizationMembers": "org members",
    "CreateOrganizationMember": "org owners",
    "DeleteOrganizationMember": "org owners",
    "UpdateOrganizationMemberRole": "org owners",
    "ListWorkspaces": "org members (collaborators: their workspaces)",
    "CreateWorkspace": "org owners",
    "ListOrganizationTeams": "org owners and members (not collaborators)",
    "ValidateTeamName": "org owners and members (not collaborators)",
    "DescribeOrganizationTeam": "org owners and members (not collaborators)",
    "ListOrganizationTeamMembers": "org owners and members (not collaborators)",
    "ListWorkspacesByTeam": "org owners and members (not collaborators)",
    "CreateOrganizationTeam": "org owners",
    "UpdateOrganizationTeam": "org owners",
    "DeleteOrganizationTeam": "org owners",
    "CreateOrganizationTeamMember": "org owners",
    "DeleteOrganizationTeamMember": "org owners",
    "TokenList": "the caller's own API tokens",
    "CreateToken": "the caller's own API tokens",
    "DeleteToken": "the caller's own API tokens",
    "DeleteAllTokens": "the caller's own API tokens",
}

TOWER_OPERATIONS = [op for op in all_operations() if op.spec == "tower.openapi.yaml"]
SCOPED = [op for op in TOWER_OPERATIONS if op.operation_id not in NOT_WORKSPACE_SCOPED]


@pytest.mark.backing_independent
def test_every_tower_operation_has_a_role_or_a_reason():
    ids = {op.operation_id for op in TOWER_OPERATIONS}
    assert ids - NOT_WORKSPACE_SCOPED.keys() - tenancy.OPERATION_ROLE.keys() == set()
    assert NOT_WORKSPACE_SCOPED.keys() <= ids
    assert not NOT_WORKSPACE_SCOPED.keys() & tenancy.OPERATION_ROLE.keys()


@pytest.mark.backing_independent
def test_the_roles_are_ordered_as_seqera_documents_them():
    assert tenancy.ROLES == ("view", "launch", "connect", "maintain", "admin", "owner")
    assert {tenancy.OPERATION_ROLE[op] for op in ("ListWorkflows", "DescribeComputeEnv")} == {
        "view"
    }
    assert tenancy.OPERATION_ROLE["CreateWorkflowLaunch"] == "launch"
    assert tenancy.OPERATION_ROLE["CancelWorkflow"] == "launch"
    assert tenancy.OPERATION_ROLE[tenancy.DELETE_OTHERS_RUNS] == "maintain"
    assert tenancy.OPERATION_ROLE["CreateComputeEnv"] == "admin"
    assert tenancy.OPERATION_ROLE["CreateWorkspaceParticipant"] == "admin"
    assert tenancy.OPERATION_ROLE["DeleteWorkspace"] == "owner"


@pytest.fixture
def world(client, db, make_user):
    """Workspace lab of org acme: its owner's run (with a task) and compute environment,
    one participant per role, and a spare participant to act on."""
    boss = make_user("boss")
    org = client.post(
        f"{API}/orgs", headers=boss, json={"organization": {"name": "acme", "fullName": "A"}}
    ).json()["organization"]["orgId"]
    ws = client.post(
        f"{API}/orgs/{org}/workspaces",
        headers=boss,
        json={"workspace": {"name": "lab", "fullName": "L", "visibility": "PRIVATE"}},
    ).json()["workspace"]["id"]
    people: dict[str, dict[str, str]] = {}
    for name in (*tenancy.ROLES, "spare"):
        people[name] = make_user(f"as-{name}")
        added = client.put(
            f"{API}/orgs/{org}/workspaces/{ws}/participants/add",
            headers=boss,
            json={"userNameOrEmail": f"as-{name}"},
        ).json()["participant"]
        client.put(
            f"{API}/orgs/{org}/workspaces/{ws}/participants/{added['participantId']}/role",
            headers=boss,
            json={"role": name if name != "spare" else "view"},
        )
        if name == "spare":
            spare = added["participantId"]
    for name in ("newcomer-" + role for role in tenancy.ROLES):
        make_user(name)
    run = client.post(
        f"{API}/workflow/launch",
        headers=boss,
        params={"workspaceId": ws},
        json={"launch": {"pipeline": "nf-core/demo"}},
    ).json()["workflowId"]
    add_tasks(db, run, 1)
    env = client.post(
        f"{API}/compute-envs",
        headers=boss,
        params={"workspaceId": ws},
        json={"computeEnv": {"name": "lab-env", "platform": "local-platform"}},
    ).json()["computeEnvId"]
    label = client.post(
        f"{API}/labels", headers=boss, params={"workspaceId": ws}, json={"name": "lab-label"}
    ).json()["id"]
    pipeline = client.post(
        f"{API}/pipelines",
        headers=boss,
        params={"workspaceId": ws},
        json={"name": "lab-pipeline", "launch": {"pipeline": "nf-core/demo"}},
    ).json()["pipeline"]
    values = {
        "workflowId": run,
        "launchId": run,  # a launched run's launchId is its own id
        "taskId": 1,
        "computeEnvId": env,
        "orgId": org,
        "workspaceId": ws,
        "participantId": spare,
        "pipelineId": pipeline["pipelineId"],
        "versionId": pipeline["version"]["id"],
        "labelId": label,
    }
    return people, values


def _body(operation: Operation, role: str, values: dict[str, Any]) -> Any:
    run = values["workflowId"]
    return {
        "CreateWorkflowLaunch": {"launch": {"pipeline": "nf-core/demo"}},
        "CancelWorkflow": {},
        "DeleteWorkflowMany": {"workflowIds": [run]},
        "CreateComputeEnv": {"computeEnv": {"name": f"env-{role}", "platform": "local-platform"}},
        "CreateTrace": sample("01-create", run),
        "UpdateTraceBegin": sample("02-begin", run),
        "UpdateTraceProgress": sample("03-progress", run),
        "UpdateTraceHeartbeat": sample("04-heartbeat", run),
        "UpdateTraceComplete": sample("05-complete", run),
        "UpdateWorkspace": {"description": f"by {role}"},
        "CreateWorkspaceParticipant": {"userNameOrEmail": f"newcomer-{role}"},
        "UpdateWorkspaceParticipantRole": {"role": "view"},
        "CreateCredentials": _credentials(f"keys-{role}"),
        "UpdateCredentials": {"credentials": {"name": f"renamed-{role}", "provider": "aws"}},
        "CreatePipelineSecret": {"name": f"SECRET_{role}", "value": "v"},
        "UpdatePipelineSecret": {"value": f"by {role}"},
        "CreatePipeline": {"name": f"p-{role}", "launch": {"pipeline": "nf-core/demo"}},
        "UpdatePipeline": {"description": f"by {role}"},
        "UpdatePipelineVersion": {"description": f"by {role}"},
        "CreateLabel": {"name": f"l-{role}"},
        "UpdateLabel": {"name": f"u-{role}"},
        **{
            operation_id: {"labelIds": [values["labelId"]], "workflowIds": [run]}
            for operation_id in (
                "AddLabelsToWorkflows",
                "ApplyLabelsToWorkflows",
                "RemoveLabelsFromWorkflows",
            )
        },
        **{
            operation_id: {"labelIds": [values["labelId"]], "pipelineIds": [values["pipelineId"]]}
            for operation_id in (
                "AddLabelsToPipelines",
                "ApplyLabelsToPipelines",
                "RemoveLabelsFromPipelines",
            )
        },
    }.get(operation.operation_id)


def _credentials(name: str) -> dict[str, Any]:
    keys = {"accessKey": "AKIAIOSFODNN7EXAMPLE", "secretKey": "s"}
    return {"credentials": {"name": name, "provider": "aws", "keys": keys}}


def _stored(client, headers, values, operation_id: str, name: str) -> dict[str, Any]:
    """Credentials or a pipeline secret of the workspace, made by its owner, for an
    operation that acts on one (a delete by one role leaves none for the next)."""
    params = {"workspaceId": values["workspaceId"]}
    if operation_id.endswith("Credentials"):
        made = client.post(
            f"{API}/credentials", headers=headers, params=params, json=_credentials(name)
        )
        return {**values, "credentialsId": made.json()["credentialsId"]}
    made = client.post(
        f"{API}/pipeline-secrets", headers=headers, params=params, json={"name": name, "value": "v"}
    )
    return {**values, "secretId": made.json()["secretId"]}


def _launch(client, headers, values) -> str:
    """A new run of the workspace, by someone else than the caller under test."""
    response = client.post(
        f"{API}/workflow/launch",
        headers=headers,
        params={"workspaceId": values["workspaceId"]},
        json={"launch": {"pipeline": "nf-core/demo"}},
    )
    assert response.status_code == 200, response.text
    return response.json()["workflowId"]


def _least_role(operation: Operation) -> str:
    if operation.operation_id in ("DeleteWorkflow", "DeleteWorkflowMany"):  # another's run
        return tenancy.OPERATION_ROLE[tenancy.DELETE_OTHERS_RUNS]
    return tenancy.OPERATION_ROLE[operation.operation_id]


@pytest.mark.parametrize("operation", SCOPED, ids=lambda op: op.operation_id)
def test_each_role_below_the_operations_is_refused_and_the_others_let_through(
    operation: Operation, client, world
):
    people, values = world
    need = _least_role(operation)
    outcome = {}
    for role in tenancy.ROLES:  # least first: a destructive call by one leaves the rest
        params = (
            {} if "{workspaceId}" in operation.template else {"workspaceId": values["workspaceId"]}
        )
        if operation.operation_id in ("DeleteWorkflow", "DeleteWorkflowMany"):
            params["force"] = "true"
        if operation.operation_id in ("DeleteWorkflow", "DeleteWorkflowMany"):
            values = {**values, "workflowId": _launch(client, people["owner"], values)}
        if "{credentialsId}" in operation.template or "{secretId}" in operation.template:
            name = f"{operation.operation_id}_{role}"
            values = _stored(client, people["owner"], values, operation.operation_id, name)
        body = _body(operation, role, values)
        response = client.request(
            operation.method.upper(),
            operation.url(values),
            headers=people[role],
            params=params,
            json=body,
        )
        if operation.operation_id == "DeleteWorkflowMany" and response.status_code == 200:
            refused = response.json()["failedWorkflowIds"] == [values["workflowId"]]
        else:
            refused = response.status_code == 403
        outcome[role] = "refused" if refused else "let through"
        if refused and response.status_code == 403:
            assert response.json()["message"], response.text
    expected = {
        role: "let through" if tenancy.at_least(role, need) else "refused" for role in tenancy.ROLES
    }
    assert outcome == expected


def test_another_workspace_sees_nothing_of_this_one(client, world, make_user):
    people, values = world
    stranger = make_user("stranger")
    org = client.post(
        f"{API}/orgs", headers=stranger, json={"organization": {"name": "other", "fullName": "O"}}
    ).json()["organization"]["orgId"]
    mine = client.post(
        f"{API}/orgs/{org}/workspaces",
        headers=stranger,
        json={"workspace": {"name": "bench", "fullName": "B", "visibility": "SHARED"}},
    ).json()["workspace"]["id"]
    run = values["workflowId"]
    for path in ("", "/progress", "/tasks", "/launch", "/metrics", "/log"):
        in_mine = client.get(
            f"{API}/workflow/{run}{path}", headers=stranger, params={"workspaceId": mine}
        )
        assert in_mine.status_code == 404, (path, in_mine.text)
        in_theirs = client.get(
            f"{API}/workflow/{run}{path}",
            headers=stranger,
            params={"workspaceId": values["workspaceId"]},
        )
        assert in_theirs.status_code == 403, (path, in_theirs.text)
    envs = client.get(f"{API}/compute-envs", headers=stranger, params={"workspaceId": mine})
    assert values["computeEnvId"] not in envs.text
