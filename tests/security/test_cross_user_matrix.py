"""User B against user A's objects, on every operation of both OpenAPI files.

The operations are read from specs/*.openapi.yaml, and DECISIONS says for each what the
service may tell another user and do for them. An operation without a decision fails,
so an endpoint added to a spec without a security decision is caught here. Each refusal
is checked three ways: B gets exactly what B would get for a run that does not exist
(so B cannot even learn that A's run exists), A's run is unchanged in the database and
on disk, and A herself is served by the very same request (so the refusal is the access
rule at work, not a malformed request).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.domain.test_trace import sample
from tests.security.conftest import OUTPUT, Victim
from tests.security.evidence import run_count, run_record, tree
from tests.security.operations import Operation, all_operations
from wes_gateway.domain import tokens
from wes_gateway.domain.ids import new_run_id
from wes_gateway.domain.models import Base, ComputeEnv, Run, RunChange, User


class Kind(enum.Enum):
    PUBLIC = "answers anyone, without a token"
    RUN = "acts on one of A's runs: B is answered as for a run that does not exist"
    LIST = "lists runs: B's list holds none of A's"
    SELF = "describes the caller"
    SUBMIT = "starts a run, which is B's own"
    SHARED = "reads compute environments, which all users share by design"
    ADMIN = "changes compute environments: administrators only"
    TOKENS = "manages the caller's own API tokens: B neither sees nor revokes A's"
    TENANCY = "organizations and workspaces: B is in none of A's, and learns nothing of them"
    KEYS = "credentials and pipeline secrets: B's own; A's are to B as ones that do not exist"
    LAUNCHPAD = "pipelines and labels: B's are his own; A's are as ones that do not exist"
    STREAM = "the run list's live changes (or a ticket for them): B's name none of A's runs"


@dataclass(frozen=True)
class Targets:
    """The objects a request names: A's (or, to compare, ones that do not exist)."""

    run_id: str
    task_id: int
    compute_env_id: str
    org_id: int = 0
    workspace_id: int = 0
    member_id: int = 0
    participant_id: int = 0
    user_id: int = 0
    token_id: int = 1  # one of A's API tokens (the one A's requests carry)
    team_id: int = 0
    credentials_id: str = "0" * 22  # A's credentials
    secret_id: int = 1  # A's pipeline secret
    pipeline_id: int = 0  # A's launchpad pipeline
    label_id: int = 0  # A's label
    version_id: str = "none"  # the version of A's pipeline


Body = Callable[[Targets], Any]


@dataclass(frozen=True)
class Decision:
    kind: Kind
    refused: tuple[int, ...] = (404,)  # what B may get for A's run (Kind.RUN)
    query: Mapping[str, str] = field(default_factory=dict)
    json: Body | None = None
    form: Body | None = None  # (fields, files) of a multipart body
    items: str | None = None  # the list in a list response (Kind.LIST)
    # What A's own request may get besides a success: the rule that applies to her (a
    # running run cannot be resumed: 409) shows the request itself was sound.
    control: tuple[int, ...] = ()


def _trace(name: str) -> Body:
    return lambda targets: sample(name, targets.run_id)


def _wes_submission(_: Targets) -> tuple[dict[str, str], list]:
    fields = {
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "workflow_url": "nf-core/demo",
    }
    return fields, [("workflow_attachment", ("note.txt", b"x"))]


FORCE = {"force": "true"}

DECISIONS: dict[str, Decision] = {
    # WES
    "GetServiceInfo": Decision(Kind.PUBLIC),
    "ListRuns": Decision(Kind.LIST, items="runs"),
    "RunWorkflow": Decision(Kind.SUBMIT, form=_wes_submission),
    "GetRunLog": Decision(Kind.RUN),
    "GetRunStatus": Decision(Kind.RUN),
    "ListTasks": Decision(Kind.RUN),
    "GetTask": Decision(Kind.RUN),
    "CancelRun": Decision(Kind.RUN),
    "GetRunStdout": Decision(Kind.RUN),
    "GetRunStderr": Decision(Kind.RUN),
    "GetRunRoCrate": Decision(Kind.RUN),
    "GetRunOutput": Decision(Kind.RUN),
    "ResumeRun": Decision(Kind.RUN, json=lambda _: {}, control=(409,)),
    # Tower: workflows
    "UserInfo": Decision(Kind.SELF),
    # Tower: API tokens
    "TokenList": Decision(Kind.TOKENS),
    "CreateToken": Decision(Kind.TOKENS, json=lambda _: {"name": "own"}),
    "DeleteToken": Decision(Kind.TOKENS),
    "DeleteAllTokens": Decision(Kind.TOKENS),
    "ListWorkflows": Decision(Kind.LIST, query={"includeTotalSize": "true"}, items="workflows"),
    "ListWorkflowsLegacy": Decision(
        Kind.LIST, query={"includeTotalSize": "true"}, items="workflows"
    ),
    "DescribeWorkflow": Decision(Kind.RUN),
    "DeleteWorkflow": Decision(Kind.RUN, query=FORCE),
    # Tower's answer lists the ids it could not delete, A's among them.
    "DeleteWorkflowMany": Decision(
        Kind.RUN,
        refused=(200,),
        query=FORCE,
        json=lambda targets: {"workflowIds": [targets.run_id]},
    ),
    "DescribeWorkflowProgress": Decision(Kind.RUN),
    "StreamWorkflowEvents": Decision(Kind.RUN),
    "CreateWorkflowEventsTicket": Decision(Kind.RUN),
    "StreamWorkflowListEvents": Decision(Kind.STREAM),
    "CreateWorkflowListEventsTicket": Decision(Kind.STREAM),
    "ListWorkflowTasks": Decision(Kind.RUN),
    "DescribeWorkflowTask": Decision(Kind.RUN),
    "DescribeWorkflowTaskLegacy": Decision(Kind.RUN),
    "DescribeWorkflowMetrics": Decision(Kind.RUN),
    "GetWorkflowLog": Decision(Kind.RUN),
    "GetWorkflowTaskLog": Decision(Kind.RUN),
    "DownloadWorkflowLog": Decision(Kind.RUN),
    "DownloadWorkflowTaskLog": Decision(Kind.RUN),
    "DescribeWorkflowLaunch": Decision(Kind.RUN),
    # A launched run's launchId is its own id: its launch is seen by who sees the run.
    "DescribeLaunch": Decision(Kind.RUN),
    "CreateWorkflowLaunch": Decision(
        Kind.SUBMIT,
        json=lambda targets: {
            "launch": {"pipeline": "nf-core/demo", "computeEnvId": targets.compute_env_id}
        },
    ),
    "CancelWorkflow": Decision(Kind.RUN, json=lambda _: {}),
    # Tower: compute environments
    "ListComputeEnvs": Decision(Kind.SHARED),
    "DescribeComputeEnv": Decision(Kind.SHARED),
    "CreateComputeEnv": Decision(
        Kind.ADMIN,
        json=lambda _: {"computeEnv": {"name": "bobs-own", "platform": "local-platform"}},
    ),
    "DeleteComputeEnv": Decision(Kind.ADMIN),
    "UpdateComputeEnvPrimary": Decision(Kind.ADMIN),
    # Tower: what nextflow -with-tower sends. Naming a run B cannot see is a 400 on create
    # (Tower's "Unknown workflow launch id"), a 404 on the others.
    "CreateTrace": Decision(Kind.RUN, refused=(400,), json=_trace("01-create")),
    # Tenancy (tests/http/test_tenancy.py and tests/security/test_workspace_roles.py hold
    # the rules; here B names ids of A's world and gets a refusal or only his own).
    "Info": Decision(Kind.PUBLIC),
    **{
        operation_id: Decision(Kind.TENANCY, json=body)
        for operation_id, body in {
            "ListWorkspacesUser": None,
            "ListOrganizations": None,
            "CreateOrganization": lambda _: {"organization": {"name": "bobs", "fullName": "B"}},
            "DescribeOrganization": None,
            "UpdateOrganization": lambda _: {"fullName": "taken over"},
            "DeleteOrganization": None,
            "ListOrganizationMembers": None,
            "CreateOrganizationMember": lambda _: {"user": "bob"},
            "DeleteOrganizationMember": None,
            "UpdateOrganizationMemberRole": lambda _: {"role": "owner"},
            "ListWorkspaces": None,
            "CreateWorkspace": lambda _: {
                "workspace": {"name": "bobs", "fullName": "B", "visibility": "SHARED"}
            },
            "DescribeWorkspace": None,
            "UpdateWorkspace": lambda _: {"visibility": "SHARED"},
            "DeleteWorkspace": None,
            "ListWorkspaceParticipants": None,
            "CreateWorkspaceParticipant": lambda _: {"userNameOrEmail": "bob"},
            "DeleteWorkspaceParticipant": None,
            "UpdateWorkspaceParticipantRole": lambda _: {"role": "owner"},
            "ListOrganizationTeams": None,
            "CreateOrganizationTeam": lambda _: {"team": {"name": "bobs"}},
            "ValidateTeamName": None,
            "DescribeOrganizationTeam": None,
            "UpdateOrganizationTeam": lambda _: {"name": "taken"},
            "DeleteOrganizationTeam": None,
            "ListOrganizationTeamMembers": None,
            "CreateOrganizationTeamMember": lambda _: {"userNameOrEmail": "bob"},
            "DeleteOrganizationTeamMember": None,
            "ListWorkspacesByTeam": None,
        }.items()
    },
    # Credentials and pipeline secrets (A's, in A's personal workspace)
    "ListCredentials": Decision(Kind.KEYS),
    "CreateCredentials": Decision(
        Kind.KEYS,
        json=lambda _: {
            "credentials": {
                "name": "own-keys",
                "provider": "aws",
                "keys": {"accessKey": "AKIAIOSFODNN7EXAMPLE", "secretKey": "s"},
            }
        },
    ),
    "ValidateCredentialsName": Decision(Kind.KEYS, query={"name": "fresh-name"}),
    "DescribeCredentials": Decision(Kind.KEYS),
    "UpdateCredentials": Decision(
        Kind.KEYS, json=lambda _: {"credentials": {"name": "taken-over", "provider": "aws"}}
    ),
    "DeleteCredentials": Decision(Kind.KEYS),
    "ListPipelineSecrets": Decision(Kind.KEYS),
    "CreatePipelineSecret": Decision(Kind.KEYS, json=lambda _: {"name": "OWN", "value": "v"}),
    "ValidatePipelineSecretName": Decision(Kind.KEYS, query={"name": "FRESH"}),
    "DescribePipelineSecret": Decision(Kind.KEYS),
    "UpdatePipelineSecret": Decision(Kind.KEYS, json=lambda _: {"value": "taken over"}),
    "DeletePipelineSecret": Decision(Kind.KEYS),
    # Launchpad and labels: A's pipeline and label are in her personal workspace; B acts
    # in his. His lists hold none of hers, naming hers is as naming none, and what he
    # makes is his own.
    **{
        operation_id: Decision(Kind.LAUNCHPAD, json=body, query=query)
        for operation_id, body, query in (
            ("ListPipelines", None, {"visibility": "all"}),
            (
                "CreatePipeline",
                lambda _: {"name": "own-pipeline", "launch": {"pipeline": "nf-core/demo"}},
                {},
            ),
            ("DescribePipelineRepository", None, {"name": "nf-core/demo"}),
            ("DescribePipeline", None, {}),
            ("UpdatePipeline", lambda _: {"description": "taken over"}, {}),
            ("ValidatePipelineName", None, {"name": "fresh-name"}),
            ("UpdatePipelineVersion", lambda _: {"description": "taken over"}, {}),
            ("DeletePipeline", None, {}),
            ("DescribePipelineLaunch", None, {}),
            ("ListLabels", None, {}),
            ("CreateLabel", lambda _: {"name": "own-label"}, {}),
            ("UpdateLabel", lambda _: {"name": "renamed"}, {}),
            ("DeleteLabel", None, {}),
            *(
                (
                    f"{verb}LabelsToPipelines" if verb != "Remove" else "RemoveLabelsFromPipelines",
                    lambda t: {"labelIds": [t.label_id], "pipelineIds": [t.pipeline_id]},
                    {},
                )
                for verb in ("Add", "Apply", "Remove")
            ),
            *(
                (
                    f"{verb}LabelsToWorkflows" if verb != "Remove" else "RemoveLabelsFromWorkflows",
                    lambda t: {"labelIds": [t.label_id], "workflowIds": [t.run_id]},
                    {},
                )
                for verb in ("Add", "Apply", "Remove")
            ),
        )
    },
    "UpdateTraceBegin": Decision(Kind.RUN, json=_trace("02-begin")),
    "UpdateTraceProgress": Decision(Kind.RUN, json=_trace("03-progress")),
    "UpdateTraceHeartbeat": Decision(Kind.RUN, json=_trace("04-heartbeat")),
    "UpdateTraceComplete": Decision(Kind.RUN, json=_trace("05-complete")),
}

OPERATIONS = all_operations()


def path_values(targets: Targets) -> dict[str, object]:
    """Every path parameter name of both specs, and what it names."""
    return {
        "run_id": targets.run_id,
        "workflowId": targets.run_id,
        "launchId": targets.run_id,
        "task_id": targets.task_id,
        "taskId": targets.task_id,
        "computeEnvId": targets.compute_env_id,
        "tokenId": targets.token_id,
        "orgId": targets.org_id,
        "workspaceId": targets.workspace_id,
        "memberId": targets.member_id,
        "participantId": targets.participant_id,
        "userId": targets.user_id,
        "teamId": targets.team_id,
        "credentialsId": targets.credentials_id,
        "secretId": targets.secret_id,
        "pipelineId": targets.pipeline_id,
        "labelId": targets.label_id,
        "versionId": targets.version_id,
        "path": OUTPUT,
    }


def send(
    client: httpx.Client,
    operation: Operation,
    targets: Targets,
    headers: dict[str, str],
) -> httpx.Response:
    decision = DECISIONS[operation.operation_id]
    extra: dict[str, Any] = {"params": dict(decision.query)}
    if decision.json is not None:
        extra["json"] = decision.json(targets)
    if decision.form is not None:
        extra["data"], extra["files"] = decision.form(targets)
    url = operation.url(path_values(targets))
    return client.request(operation.method.upper(), url, headers=headers, **extra)


def list_stream(client, db, operation: Operation, targets: Targets, headers) -> httpx.Response:
    """The run list's event stream as the caller of ``headers`` opens it (with a ticket
    of theirs, for the ticket operation), resuming from before the first change kept: a
    replay of every change the caller may see (the in-process stream ends soon after)."""
    with db.session() as session:
        oldest = session.execute(select(func.min(RunChange.seq))).scalar_one() or 1
    params = {"lastEventId": str(oldest - 1)}
    if operation.operation_id == "CreateWorkflowListEventsTicket":
        ticket = send(client, operation, targets, headers)
        if not ticket.is_success:
            return ticket
        params["ticket"] = ticket.json()["ticket"]
        headers = {}
    return client.get("/api/workflow-events", headers=headers, params=params)


def _as_seen(response: httpx.Response, run_id: str) -> tuple[int, str, str]:
    """A response with the run id it names blanked out, to compare two of them."""
    kind = response.headers.get("content-type", "")
    return response.status_code, kind, response.text.replace(run_id, "<run>")


@pytest.fixture
def world(client, admin, alice, victim: Victim):
    """A's run, and a compute environment an administrator made (not the built-in)."""
    response = client.post(
        "/api/compute-envs",
        headers=admin,
        json={"computeEnv": {"name": "shared-local", "platform": "local-platform"}},
    )
    assert response.status_code == 200, response.text
    env_id = response.json()["computeEnvId"]
    token_id = int(tokens.parse_token(alice["Authorization"].split()[1])[0])
    # A's organization and workspace, where A is the one member and participant.
    org_id = client.post(
        "/api/orgs", headers=alice, json={"organization": {"name": "alices", "fullName": "A"}}
    ).json()["organization"]["orgId"]
    workspace_id = client.post(
        f"/api/orgs/{org_id}/workspaces",
        headers=alice,
        json={"workspace": {"name": "lab", "fullName": "A's lab", "visibility": "PRIVATE"}},
    ).json()["workspace"]["id"]
    member = client.get(f"/api/orgs/{org_id}/members", headers=alice).json()["members"][0]
    participant = client.put(
        f"/api/orgs/{org_id}/workspaces/{workspace_id}/participants/add",
        headers=alice,
        json={"memberId": member["memberId"]},
    ).json()["participant"]
    team_id = client.post(
        f"/api/orgs/{org_id}/teams", headers=alice, json={"team": {"name": "alices"}}
    ).json()["team"]["teamId"]
    client.post(
        f"/api/orgs/{org_id}/teams/{team_id}/members",
        headers=alice,
        json={"userNameOrEmail": "alice"},
    )
    keys = {"accessKey": "AKIAIOSFODNN7EXAMPLE", "secretKey": "alices-secret-key"}
    credentials_id = client.post(
        "/api/credentials",
        headers=alice,
        json={"credentials": {"name": "alices-keys", "provider": "aws", "keys": keys}},
    ).json()["credentialsId"]
    secret_id = client.post(
        "/api/pipeline-secrets", headers=alice, json={"name": "ALICES", "value": "alices-value"}
    ).json()["secretId"]
    targets = Targets(
        victim.run_id,
        victim.task_ids[0],
        env_id,
        org_id,
        workspace_id,
        member["memberId"],
        participant["participantId"],
        member["userId"],
        token_id,
        team_id,
        credentials_id,
        secret_id,
    )
    label = client.post("/api/labels", headers=alice, json={"name": "alices-label"})
    pipeline = client.post(
        "/api/pipelines",
        headers=alice,
        json={
            "name": "alices-pipeline",
            "labelIds": [label.json()["id"]],
            "launch": {"pipeline": "nf-core/demo", "revision": "alices-branch"},
        },
    )
    assert pipeline.status_code == 200, pipeline.text
    targets = replace(
        targets,
        pipeline_id=pipeline.json()["pipeline"]["pipelineId"],
        label_id=label.json()["id"],
        version_id=pipeline.json()["pipeline"]["version"]["id"],
    )
    return targets, victim


def _compute_envs(db) -> list[dict]:
    with db.session() as session:
        rows = session.execute(select(ComputeEnv.__table__).order_by(ComputeEnv.id)).mappings()
        return [dict(row) for row in rows]


def _token_ids(client, headers) -> list[int]:
    answer = client.get("/api/tokens", headers=headers)
    assert answer.status_code == 200, answer.text
    return [token["id"] for token in answer.json()["tokens"]]


def _tenancy(db) -> dict[str, list]:
    tables = ("organizations", "org_members", "workspaces", "participants", "teams")
    tables += ("team_members",)
    with db.session() as session:
        found = {}
        for name in tables:
            table = Base.metadata.tables[name]
            query = select(table).order_by(*table.primary_key.columns)
            found[name] = [tuple(row) for row in session.execute(query).all()]
        return found


def _keys_of(db, user_id: int) -> list[tuple]:
    """The credentials and pipeline secrets of a user's personal workspace, as stored."""
    with db.session() as session:
        return [
            tuple(row)
            for table in ("credentials", "pipeline_secrets")
            for row in session.execute(
                select(Base.metadata.tables[table])
                .where(Base.metadata.tables[table].c.scope == f"u{user_id}")
                .order_by("id")
            ).all()
        ]


def _blank_keys(response: httpx.Response, targets: Targets) -> tuple[int, str]:
    text = response.text.replace(targets.credentials_id, "<id>")
    return response.status_code, text.replace(f" {targets.secret_id} ", " <id> ")


def _launchpad(db) -> dict[str, list]:
    tables = ("pipelines", "labels", "pipeline_labels", "run_labels")
    with db.session() as session:
        return {
            table: sorted(
                tuple(str(value) for value in row)
                for row in session.execute(select(Base.metadata.tables[table])).all()
            )
            for table in tables
        }


def _owner_of(db, run_id: str) -> str:
    with db.session() as session:
        return session.execute(
            select(User.name).join(Run, Run.owner_id == User.id).where(Run.id == run_id)
        ).scalar_one()


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.operation_id)
def test_another_user_learns_and_changes_nothing(
    operation: Operation, client, db, alice, bob, admin, world
):
    decision = DECISIONS.get(operation.operation_id)
    assert decision is not None, f"{operation.label} has no security decision in DECISIONS"
    targets, victim = world
    before, files_before = run_record(db, victim.run_id), tree(victim.run_dir)
    envs_before = _compute_envs(db)

    if decision.kind is Kind.PUBLIC:
        response = send(client, operation, targets, {})
        assert response.status_code == 200, response.text
        assert victim.run_id not in response.text
    elif decision.kind is Kind.RUN:
        theirs = send(client, operation, targets, bob)
        ghost = replace(targets, run_id=new_run_id())
        nobodys = send(client, operation, ghost, bob)
        assert theirs.status_code in decision.refused, theirs.text
        assert _as_seen(theirs, victim.run_id) == _as_seen(nobodys, ghost.run_id)
        assert victim.run_name not in theirs.text and "alice" not in theirs.text
    elif decision.kind is Kind.LIST:
        response = send(client, operation, targets, bob)
        assert response.status_code == 200, response.text
        assert victim.run_id not in response.text
        assert response.json()[decision.items] == []  # bob has no runs of his own
        assert response.json().get("totalSize") in (None, 0)
    elif decision.kind is Kind.SELF:
        response = send(client, operation, targets, bob)
        assert response.status_code == 200, response.text
        assert "bob" in response.text and "alice" not in response.text
    elif decision.kind is Kind.STREAM:
        response = list_stream(client, db, operation, targets, bob)
        assert response.status_code == 200, response.text
        assert "event: change" not in response.text and victim.run_id not in response.text
    elif decision.kind is Kind.SUBMIT:
        count = run_count(db)
        response = send(client, operation, targets, bob)
        assert response.status_code == 200, response.text
        (new_id,) = response.json().values()
        assert new_id != victim.run_id and _owner_of(db, new_id) == "bob"
        assert run_count(db) == count + 1
    elif decision.kind is Kind.SHARED:
        response = send(client, operation, targets, bob)
        assert response.status_code == 200, response.text
        assert response.text == send(client, operation, targets, alice).text
        assert victim.run_id not in response.text
    elif decision.kind is Kind.TOKENS:
        alices = _token_ids(client, alice)
        response = send(client, operation, targets, bob)
        if operation.operation_id == "DeleteToken":
            ghost = replace(targets, token_id=tokens.NUMBER_LIMIT)
            nobodys = send(client, operation, ghost, bob)
            assert response.status_code == 404, response.text
            assert (response.status_code, response.text) == (
                nobodys.status_code,
                nobodys.text.replace(str(tokens.NUMBER_LIMIT), str(targets.token_id)),
            )
        else:  # B's own tokens, listed, made or revoked; none of A's named
            assert response.is_success, response.text
            assert all(str(number) not in response.text for number in alices)
        assert _token_ids(client, alice) == alices
    elif decision.kind is Kind.ADMIN:
        response = send(client, operation, targets, bob)
        assert response.status_code == 403, response.text
        assert _compute_envs(db) == envs_before
    elif decision.kind is Kind.TENANCY:
        before_tenancy = _tenancy(db)
        response = send(client, operation, targets, bob)
        assert response.status_code in (200, 403), response.text
        assert "alice" not in response.text and "A's lab" not in response.text
        if response.status_code == 200 and operation.method == "get":
            assert str(targets.org_id) not in response.text.replace('"totalSize"', "")
        after = _tenancy(db)
        if operation.operation_id != "CreateOrganization":  # B's own organization
            assert after == before_tenancy
        kept = {t: {row[0] for row in rows} for t, rows in before_tenancy.items()}
        assert {t: [r for r in rows if r[0] in kept[t]] for t, rows in after.items()} == (
            before_tenancy
        )
    elif decision.kind is Kind.KEYS:
        alices = _keys_of(db, targets.user_id)
        response = send(client, operation, targets, bob)
        assert response.status_code in (200, 204, 403), response.text
        for hers in ("alices-keys", "ALICES", "alices-value", "alices-secret-key"):
            assert hers not in response.text
        if "{credentialsId}" in operation.template or "{secretId}" in operation.template:
            ghost = replace(targets, credentials_id="Z" * 22, secret_id=2**40)
            nobodys = send(client, operation, ghost, bob)
            assert _blank_keys(response, targets) == _blank_keys(nobodys, ghost)
        assert _keys_of(db, targets.user_id) == alices
    elif decision.kind is Kind.LAUNCHPAD:
        before_launchpad = _launchpad(db)
        response = send(client, operation, targets, bob)
        ghost = replace(targets, pipeline_id=10**15, label_id=10**15, run_id=new_run_id())
        nobodys = send(client, operation, ghost, bob)
        assert response.status_code in (200, 204, 400, 404), response.text
        for secret in ("alice", "alices-", victim.run_id):
            assert secret not in response.text, (secret, response.text)
        if response.status_code >= 400:  # naming A's is as naming nothing
            assert response.status_code == nobodys.status_code, (response.text, nobodys.text)
        after = _launchpad(db)
        if operation.method == "get" or response.status_code >= 400:
            assert after == before_launchpad
        else:  # B's own, beside A's untouched
            kept = {t: [r for r in rows if r in before_launchpad[t]] for t, rows in after.items()}
            assert kept == before_launchpad
    else:  # pragma: no cover - a new Kind needs its check here
        pytest.fail(f"no check for {decision.kind}")

    assert run_record(db, victim.run_id) == before
    assert tree(victim.run_dir) == files_before
    if decision.kind is Kind.ADMIN:
        assert send(client, operation, targets, admin).is_success  # the rule, not the request
    elif decision.kind is Kind.TENANCY:
        pass  # A's own rights are tests/security/test_workspace_roles.py's
    elif decision.kind is not Kind.PUBLIC:
        control = send(client, operation, targets, alice)
        assert control.is_success or control.status_code in decision.control, (
            control.status_code,
            control.text,
        )
        if decision.kind is Kind.LIST:
            assert victim.run_id in control.text
        if decision.kind is Kind.STREAM:  # the same stream shows A hers
            assert victim.run_id in list_stream(client, db, operation, targets, alice).text
        if operation.operation_id == "DeleteWorkflowMany":
            assert control.json() == {"failedWorkflowIds": []}


@pytest.mark.parametrize(
    "operation", [op for op in OPERATIONS if not op.public], ids=lambda op: op.operation_id
)
def test_no_token_is_401_everywhere_but_the_public_operations(
    operation: Operation, client, db, world
):
    targets, victim = world
    before = run_record(db, victim.run_id)
    for headers in ({}, {"Authorization": "Bearer " + "A" * 40}):
        response = send(client, operation, targets, headers)
        assert response.status_code == 401, response.text
        assert victim.run_name not in response.text
    assert run_record(db, victim.run_id) == before


@pytest.mark.backing_independent
def test_the_spec_and_the_decisions_agree_on_what_is_public():
    for operation in OPERATIONS:
        decision = DECISIONS.get(operation.operation_id)
        if decision is not None:
            assert (decision.kind is Kind.PUBLIC) == operation.public, operation.label


@pytest.mark.backing_independent
def test_every_decision_is_about_an_operation_of_the_specs():
    assert set(DECISIONS) - {op.operation_id for op in OPERATIONS} == set()
    assert len(OPERATIONS) == len({op.operation_id for op in OPERATIONS})
