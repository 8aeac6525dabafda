"""Tenancy, as Seqera has it: organizations with members (org roles owner, member,
collaborator) and teams, workspaces in an organization, and participants of a workspace
(a member or a team) with a workspace role.

Roles decide in one place, ``OPERATION_ROLE``: each operation of the APIs that acts in
a workspace names the least workspace role it takes. ``acting`` is the one check: it
turns the caller and the ``workspaceId`` of a request into the principal the run
service and the compute environments work with (its ``workspace_id`` and
``workspace_role``), or refuses with 403 as Seqera does for a workspace the caller is
not in. No ``workspaceId`` is the caller's personal workspace, where they are owner.
Service administrators are owners everywhere and, in their personal context, keep
their view of every run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wes_gateway.domain import tenancy_fields as fields
from wes_gateway.domain.errors import BadRequest, Conflict, Forbidden, InvalidField, NotFound
from wes_gateway.domain.ids import INT32_MAX
from wes_gateway.domain.models import (
    ComputeEnv,
    Organization,
    OrgMember,
    Participant,
    Run,
    Team,
    TeamMember,
    User,
    Workspace,
)
from wes_gateway.domain.tokens import Principal

# Workspace roles, least first.
ROLES = ("view", "launch", "connect", "maintain", "admin", "owner")
ORG_ROLES = ("owner", "member", "collaborator")
VISIBILITIES = ("PRIVATE", "SHARED")

# The least workspace role of each operation that acts in a workspace (operationIds of
# both specs, and the one rule that is not an operation: deleting another's run).
DELETE_OTHERS_RUNS = "DeleteOthersRuns"
OPERATION_ROLE: dict[str, str] = {
    # view: reads runs, tasks, logs and compute environments, and who takes part
    "ListWorkflows": "view",
    "ListWorkflowsLegacy": "view",
    "DescribeWorkflow": "view",
    "DescribeWorkflowProgress": "view",
    "StreamWorkflowEvents": "view",
    "CreateWorkflowEventsTicket": "view",
    "StreamWorkflowListEvents": "view",
    "CreateWorkflowListEventsTicket": "view",
    "ListWorkflowTasks": "view",
    "DescribeWorkflowTask": "view",
    "DescribeWorkflowTaskLegacy": "view",
    "DescribeWorkflowMetrics": "view",
    "GetWorkflowLog": "view",
    "GetWorkflowTaskLog": "view",
    "DownloadWorkflowLog": "view",
    "DownloadWorkflowTaskLog": "view",
    "DescribeWorkflowLaunch": "view",
    "DescribeLaunch": "view",
    # pipeline secrets' names (never their values): a launch may name them
    "ListPipelineSecrets": "launch",
    "DescribePipelineSecret": "launch",
    "ListComputeEnvs": "view",
    "DescribeComputeEnv": "view",
    "DescribeWorkspace": "view",
    "ListWorkspaceParticipants": "view",
    "ListRuns": "view",
    "GetRunLog": "view",
    "GetRunStatus": "view",
    "ListTasks": "view",
    "GetTask": "view",
    "ListPipelines": "view",
    "DescribePipeline": "view",
    "DescribePipelineLaunch": "view",
    "DescribePipelineRepository": "view",
    "ValidatePipelineName": "view",
    "ListLabels": "view",
    "GetRunStdout": "view",
    "GetRunStderr": "view",
    "GetRunRoCrate": "view",
    "GetRunOutput": "view",
    # launch: also launches, relaunches, cancels, reports runs, deletes its own runs
    "CreateWorkflowLaunch": "launch",
    "RunWorkflow": "launch",
    "CancelWorkflow": "launch",
    "CancelRun": "launch",
    "ResumeRun": "launch",
    "DeleteWorkflow": "launch",
    "DeleteWorkflowMany": "launch",
    "CreateTrace": "launch",
    "UpdateTraceBegin": "launch",
    "UpdateTraceProgress": "launch",
    "UpdateTraceHeartbeat": "launch",
    "UpdateTraceComplete": "launch",
    # maintain: also deletes the runs of others, manages the launchpad and the labels
    DELETE_OTHERS_RUNS: "maintain",
    "CreatePipeline": "maintain",
    "UpdatePipeline": "maintain",
    "UpdatePipelineVersion": "maintain",
    "DeletePipeline": "maintain",
    "AddLabelsToPipelines": "maintain",
    "ApplyLabelsToPipelines": "maintain",
    "RemoveLabelsFromPipelines": "maintain",
    "CreateLabel": "maintain",
    "UpdateLabel": "maintain",
    "DeleteLabel": "maintain",
    "AddLabelsToWorkflows": "maintain",
    "ApplyLabelsToWorkflows": "maintain",
    "RemoveLabelsFromWorkflows": "maintain",
    # admin: also manages compute environments, participants and the workspace's settings
    "CreateComputeEnv": "admin",
    "DeleteComputeEnv": "admin",
    "UpdateComputeEnvPrimary": "admin",
    "CreateWorkspaceParticipant": "admin",
    "DeleteWorkspaceParticipant": "admin",
    "UpdateWorkspaceParticipantRole": "admin",
    "UpdateWorkspace": "admin",
    # credentials (read too: their fields name cloud accounts) and pipeline secrets
    "ListCredentials": "admin",
    "DescribeCredentials": "admin",
    "CreateCredentials": "admin",
    "UpdateCredentials": "admin",
    "DeleteCredentials": "admin",
    "ValidateCredentialsName": "admin",
    "CreatePipelineSecret": "admin",
    "UpdatePipelineSecret": "admin",
    "DeletePipelineSecret": "admin",
    "ValidatePipelineSecretName": "admin",
    # owner: also deletes the workspace
    "DeleteWorkspace": "owner",
}


def at_least(role: str | None, minimum: str) -> bool:
    return role is not None and ROLES.index(role) >= ROLES.index(minimum)


def allows(principal: Principal, operation: str) -> bool:
    """Whether the acting principal's workspace role is enough for ``operation``."""
    return at_least(principal.workspace_role, OPERATION_ROLE[operation])


def _best(roles: list[str]) -> str | None:
    return max(roles, key=ROLES.index) if roles else None


def workspace_role(session: Session, user_id: int, workspace: Workspace) -> str | None:
    """The user's role in ``workspace``: owner for an owner of its organization, else the
    best of their own participation and their teams'; None when they take no part."""
    member = session.execute(
        select(OrgMember).where(OrgMember.org_id == workspace.org_id, OrgMember.user_id == user_id)
    ).scalar_one_or_none()
    if member is None:
        return None
    if member.role == "owner":
        return "owner"
    roles = session.execute(
        select(Participant.role).where(
            Participant.workspace_id == workspace.id,
            or_(
                Participant.member_id == member.id,
                Participant.team_id.in_(
                    select(TeamMember.team_id).where(TeamMember.member_id == member.id)
                ),
            ),
        )
    ).scalars()
    return _best(list(roles))


def acting(
    session: Session, principal: Principal, workspace_id: int | None, operation: str
) -> Principal:
    """The principal as it acts in ``workspace_id`` (None: its personal workspace) for
    ``operation``; 403 when the workspace is not one the caller is in, or their role
    there is below the operation's."""
    if principal.run_id is not None or operation not in OPERATION_ROLE:
        # A run's own token acts on its run, wherever that is.
        return principal
    if principal.limited_to is not None:
        # A token limited to a workspace acts there, named or not, and nowhere else.
        if workspace_id is not None and workspace_id != principal.limited_to:
            raise Forbidden(
                f"workspaceId: this token is limited to workspace {principal.limited_to}"
            )
        workspace_id = principal.limited_to
    if workspace_id is None:
        return dataclasses.replace(principal, workspace_id=None, workspace_role="owner")
    workspace = session.get(Workspace, workspace_id)
    role = None
    if workspace is not None:
        role = (
            "owner"
            if principal.acts_as_admin
            else workspace_role(session, principal.user_id, workspace)
        )
    if role is None:
        raise Forbidden(f"workspaceId: you are not a participant of workspace {workspace_id}")
    need = OPERATION_ROLE[operation]
    if not at_least(role, need):
        raise Forbidden(
            f"workspaceId: role {role!r} in workspace {workspace_id} cannot do this "
            f"({operation} needs {need!r} or above)"
        )
    return dataclasses.replace(principal, workspace_id=workspace_id, workspace_role=role)


def acting_on_run(session: Session, principal: Principal, run_id: str, operation: str) -> Principal:
    """The principal as it acts in the workspace of run ``run_id``, for the calls that
    name a run and no workspace (WES's per-run calls). A run of a workspace the caller
    takes no part in is as absent as a run that does not exist (404); a participant
    whose role is below the operation's gets the 403 of ``acting``. A run of no
    workspace (or none at all) is looked up in the personal workspace."""
    if principal.run_id is not None or operation not in OPERATION_ROLE:
        return principal
    workspace_id = session.execute(
        select(Run.workspace_id).where(Run.id == run_id, Run.deleted_at.is_(None))
    ).scalar_one_or_none()
    if principal.limited_to is not None and workspace_id != principal.limited_to:
        raise NotFound(f"run {run_id!r} not found")
    if workspace_id is not None and not principal.acts_as_admin:
        workspace = session.get(Workspace, workspace_id)
        if workspace is None or workspace_role(session, principal.user_id, workspace) is None:
            raise NotFound(f"run {run_id!r} not found")
    return acting(session, principal, workspace_id, operation)


def token_workspace(session: Session, principal: Principal, workspace_id: Any) -> int | None:
    """The workspace a new API token is to be limited to (None: not limited): one the
    caller takes part in (a 403 as ``acting`` answers otherwise)."""
    if workspace_id is None:
        return None
    checked = fields.int64(workspace_id, "workspaceId")
    acting(session, principal, checked, "DescribeWorkspace")
    return checked


def runs_in_scope(query: Select, principal: Principal) -> Select:
    """``query`` on runs, narrowed to the principal's workspace: a workspace's runs, or
    in the personal workspace the caller's own (a service administrator's: all)."""
    if principal.workspace_id is not None:
        return query.where(Run.workspace_id == principal.workspace_id)
    if principal.is_admin:
        return query
    return query.where(Run.owner_id == principal.user_id, Run.workspace_id.is_(None))


# --- organizations and members ------------------------------------------------------


def membership(session: Session, org_id: int, user_id: int) -> OrgMember | None:
    return session.execute(
        select(OrgMember).where(OrgMember.org_id == org_id, OrgMember.user_id == user_id)
    ).scalar_one_or_none()


def organization(
    session: Session, principal: Principal, org_id: int, *, owner: bool = False
) -> tuple[Organization, OrgMember | None]:
    """The organization and the caller's membership; 403 as Seqera answers when the
    caller is no member (or, with ``owner``, not an owner). Administrators pass."""
    fields.for_people(principal)
    org = session.get(Organization, org_id)
    member = membership(session, org_id, principal.user_id) if org is not None else None
    if org is None or (member is None and not principal.acts_as_admin):
        raise Forbidden(f"orgId: you are not a member of organization {org_id}")
    if owner and not principal.acts_as_admin and member.role != "owner":
        raise Forbidden(f"orgId: only an owner of organization {org_id} may do this")
    return org, member


def _org_fields(org: Organization, spec: Mapping[str, Any], prefix: str) -> None:
    full_name = fields.text(spec, "fullName", f"{prefix}fullName", 100)
    if full_name is not None:
        org.full_name = full_name
    for key, column, limit in (
        ("description", "description", 1000),
        ("location", "location", 100),
        ("website", "website", 255),
    ):
        if key in spec:
            setattr(org, column, fields.text(spec, key, prefix + key, limit))


def create_organization(
    session: Session, principal: Principal, body: Mapping[str, Any]
) -> tuple[Organization, OrgMember]:
    fields.for_people(principal)
    spec = fields.required_object(body.get("organization"), "organization")
    fields.ignored_id(spec, "organization.id")
    name = fields.name(spec, "organization.name")
    fields.text(spec, "fullName", "organization.fullName", 100, required=True)
    org = Organization(name=name)
    _org_fields(org, spec, "organization.")
    session.add(org)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"an organization named {name!r} already exists") from None
    member = OrgMember(org_id=org.id, user_id=principal.user_id, role="owner")
    session.add(member)
    fields.commit_unique(session, f"organization {name!r}")
    return org, member


def list_organizations(
    session: Session, principal: Principal, role: str | None = None
) -> list[tuple[Organization, OrgMember | None]]:
    fields.for_people(principal)
    query = select(Organization, OrgMember).join(
        OrgMember,
        (OrgMember.org_id == Organization.id) & (OrgMember.user_id == principal.user_id),
        isouter=principal.acts_as_admin,
    )
    if role is not None:
        query = query.where(OrgMember.role == fields.one_of(role, "role", ORG_ROLES))
    rows = session.execute(query.order_by(Organization.name)).all()
    return [(org, member) for org, member in rows]


def update_organization(
    session: Session, principal: Principal, org_id: int, body: Mapping[str, Any]
) -> None:
    org, _ = organization(session, principal, org_id, owner=True)
    body = fields.required_object(body, "body")
    if body.get("name") is not None:
        org.name = fields.name(body, "name")
    _org_fields(org, body, "")
    fields.commit_unique(session, f"an organization named {org.name!r}")


def delete_organization(session: Session, principal: Principal, org_id: int) -> None:
    org, _ = organization(session, principal, org_id, owner=True)
    held = select(func.count()).select_from(Run).join(Workspace, Workspace.id == Run.workspace_id)
    if session.execute(held.where(Workspace.org_id == org_id)).scalar_one():
        raise BadRequest(
            f"orgId: organization {org_id} has workspaces with runs; delete those first"
        )
    session.delete(org)
    session.commit()


def list_members(
    session: Session,
    principal: Principal,
    org_id: int,
    *,
    max_: int | None = None,
    offset: int | None = None,
    search: str | None = None,
) -> tuple[list[tuple[OrgMember, User]], int]:
    organization(session, principal, org_id)
    query = select(OrgMember, User).join(User, User.id == OrgMember.user_id)
    rows, total = fields.page(
        session,
        query.where(OrgMember.org_id == org_id),
        User.name,
        max_=max_,
        offset=offset,
        search=search,
        named=User.name,
    )
    return [(member, user) for member, user in rows], total


def user_named(session: Session, name: Any, field: str) -> User:
    """The user of that name, or of that e-mail address (known from single sign-on)."""
    if not isinstance(name, str) or not name:
        raise InvalidField(field, "is required: a user name or e-mail address")
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None and "@" in name:
        found = session.execute(
            select(User).where(User.email == name.strip().lower()).limit(2)
        ).scalars()
        matches = list(found)
        if len(matches) > 1:
            raise InvalidField(field, f"more than one user has the address {name!r}; name one")
        user = matches[0] if matches else None
    if user is None:
        raise InvalidField(field, f"no user named {name!r}")
    return user


def add_member(
    session: Session, principal: Principal, org_id: int, body: Mapping[str, Any]
) -> tuple[OrgMember, User]:
    organization(session, principal, org_id, owner=True)
    user = user_named(session, fields.required_object(body, "body").get("user"), "user")
    if membership(session, org_id, user.id) is not None:
        raise Conflict(f"user {user.name!r} is already a member of organization {org_id}")
    member = OrgMember(org_id=org_id, user_id=user.id, role="member")
    session.add(member)
    fields.commit_unique(session, f"member {user.name!r}")
    return member, user


def org_member(session: Session, org_id: int, member_id: int) -> OrgMember:
    member = session.get(OrgMember, member_id)
    if member is None or member.org_id != org_id:
        raise InvalidField("memberId", f"no member {member_id} in organization {org_id}")
    return member


def _keep_an_owner(session: Session, member: OrgMember) -> None:
    if member.role != "owner":
        return
    owners = select(func.count()).where(
        OrgMember.org_id == member.org_id, OrgMember.role == "owner"
    )
    if session.execute(owners).scalar_one() <= 1:
        raise BadRequest("memberId: an organization keeps at least one owner")


def delete_member(session: Session, principal: Principal, org_id: int, member_id: int) -> None:
    organization(session, principal, org_id, owner=True)
    member = org_member(session, org_id, member_id)
    _keep_an_owner(session, member)
    session.delete(member)
    session.commit()


def update_member_role(
    session: Session, principal: Principal, org_id: int, member_id: int, body: Mapping[str, Any]
) -> None:
    organization(session, principal, org_id, owner=True)
    member = org_member(session, org_id, member_id)
    role = fields.one_of(fields.required_object(body, "body").get("role"), "role", ORG_ROLES)
    if role != "owner":
        _keep_an_owner(session, member)
    member.role = role
    session.commit()


# --- workspaces and participants ----------------------------------------------------


def workspace(
    session: Session, principal: Principal, org_id: int, workspace_id: int, operation: str
) -> tuple[Workspace, Principal]:
    """The workspace of the organization, if the caller's role allows ``operation``."""
    fields.for_people(principal, limited_ok=True)
    who = acting(session, principal, workspace_id, operation)
    found = session.get(Workspace, workspace_id)
    if found is None or found.org_id != org_id:
        raise Forbidden(f"workspaceId: you are not a participant of workspace {workspace_id}")
    return found, who


def _workspace_fields(ws: Workspace, spec: Mapping[str, Any], prefix: str) -> None:
    if spec.get("fullName") is not None:
        ws.full_name = fields.text(spec, "fullName", prefix + "fullName", 100)
    if "description" in spec:
        ws.description = fields.text(spec, "description", prefix + "description", 1000)
    if spec.get("visibility") is not None:
        visibility = spec["visibility"]
        if visibility not in VISIBILITIES:
            raise InvalidField(prefix + "visibility", "must be PRIVATE or SHARED")
        ws.visibility = visibility


def create_workspace(
    session: Session, principal: Principal, org_id: int, body: Mapping[str, Any]
) -> Workspace:
    organization(session, principal, org_id, owner=True)
    spec = fields.required_object(
        fields.required_object(body, "body").get("workspace"), "workspace"
    )
    fields.ignored_id(spec, "workspace.id")
    name = fields.name(spec, "workspace.name")
    fields.text(spec, "fullName", "workspace.fullName", 100, required=True)
    ws = Workspace(org_id=org_id, name=name, visibility="PRIVATE")
    _workspace_fields(ws, spec, "workspace.")
    session.add(ws)
    fields.commit_unique(session, f"a workspace named {name!r} in organization {org_id}")
    return ws


def list_workspaces(session: Session, principal: Principal, org_id: int) -> list[Workspace]:
    """The organization's workspaces as Seqera shows them: all to its owners, the
    ``SHARED`` ones and those they take part in to its members, only those they take
    part in to its collaborators."""
    _, member = organization(session, principal, org_id)
    query = select(Workspace).where(Workspace.org_id == org_id).order_by(Workspace.name)
    found = list(session.execute(query).scalars())
    if principal.acts_as_admin or member is None or member.role == "owner":
        return found
    shared_shown = member.role == "member"
    return [
        ws
        for ws in found
        if (shared_shown and ws.visibility == "SHARED")
        or workspace_role(session, principal.user_id, ws) is not None
    ]


def update_workspace(
    session: Session, principal: Principal, org_id: int, workspace_id: int, body: Mapping
) -> Workspace:
    ws, _ = workspace(session, principal, org_id, workspace_id, "UpdateWorkspace")
    body = fields.required_object(body, "body")
    if body.get("name") is not None:
        ws.name = fields.name(body, "name")
    _workspace_fields(ws, body, "")
    fields.commit_unique(session, f"a workspace named {ws.name!r}")
    return ws


def delete_workspace(session: Session, principal: Principal, org_id: int, workspace_id: int):
    ws, _ = workspace(session, principal, org_id, workspace_id, "DeleteWorkspace")
    held = select(func.count()).where(Run.workspace_id == ws.id)
    if session.execute(held).scalar_one():
        raise BadRequest(f"workspaceId: workspace {workspace_id} holds runs; delete them first")
    session.execute(delete(ComputeEnv).where(ComputeEnv.workspace_id == ws.id))
    session.delete(ws)
    session.commit()


@dataclass(frozen=True)
class ParticipantView:
    participant: Participant
    member: OrgMember | None
    user: User | None
    team: Team | None


def _participant_views(session: Session, query: Select) -> list[ParticipantView]:
    rows = session.execute(
        query.add_columns(OrgMember, User, Team)
        .join(OrgMember, OrgMember.id == Participant.member_id, isouter=True)
        .join(User, User.id == OrgMember.user_id, isouter=True)
        .join(Team, Team.id == Participant.team_id, isouter=True)
    ).all()
    return [ParticipantView(*row) for row in rows]


def list_participants(
    session: Session,
    principal: Principal,
    org_id: int,
    workspace_id: int,
    *,
    max_: int | None = None,
    offset: int | None = None,
    search: str | None = None,
) -> tuple[list[ParticipantView], int]:
    workspace(session, principal, org_id, workspace_id, "ListWorkspaceParticipants")
    views = _participant_views(
        session,
        select(Participant)
        .where(Participant.workspace_id == workspace_id)
        .order_by(Participant.id),
    )
    if search:
        wanted = search.lower()
        views = [
            view
            for view in views
            if ((view.user.name if view.user else view.team.name) or "").lower().startswith(wanted)
        ]
    start = max(offset or 0, 0)
    end = None if max_ is None else start + max(max_, 0)
    return views[start:end], len(views)


def add_participant(
    session: Session, principal: Principal, org_id: int, workspace_id: int, body: Mapping
) -> ParticipantView:
    """Add a member (by ``memberId``, or a user by ``userNameOrEmail``, who becomes a
    collaborator of the organization if they were not in it) or a team (``teamId``),
    with the role ``launch`` as Seqera does; the role is changed afterwards."""
    ws, _ = workspace(session, principal, org_id, workspace_id, "CreateWorkspaceParticipant")
    body = fields.required_object(body, "body")
    participant = Participant(workspace_id=ws.id, role="launch")
    if body.get("teamId") is not None:
        team = session.get(Team, fields.int64(body["teamId"], "teamId"))
        if team is None or team.org_id != org_id:
            raise InvalidField("teamId", f"no team {body['teamId']} in organization {org_id}")
        participant.team_id = team.id
    elif body.get("memberId") is not None:
        member_id = fields.int64(body["memberId"], "memberId")
        participant.member_id = org_member(session, org_id, member_id).id
    elif body.get("userNameOrEmail") is not None:
        user = user_named(session, body["userNameOrEmail"], "userNameOrEmail")
        member = membership(session, org_id, user.id)
        if member is None:
            member = OrgMember(org_id=org_id, user_id=user.id, role="collaborator")
            session.add(member)
            session.flush()
        participant.member_id = member.id
    else:
        raise InvalidField("memberId", "one of memberId, teamId or userNameOrEmail is required")
    session.add(participant)
    fields.commit_unique(session, "this participant")
    (view,) = _participant_views(
        session, select(Participant).where(Participant.id == participant.id)
    )
    return view


def _participant(session: Session, workspace_id: int, participant_id: int) -> Participant:
    found = session.get(Participant, participant_id)
    if found is None or found.workspace_id != workspace_id:
        raise InvalidField("participantId", f"no participant {participant_id} in this workspace")
    return found


def delete_participant(
    session: Session, principal: Principal, org_id: int, workspace_id: int, participant_id: int
) -> None:
    workspace(session, principal, org_id, workspace_id, "DeleteWorkspaceParticipant")
    session.delete(_participant(session, workspace_id, participant_id))
    session.commit()


def update_participant_role(
    session: Session,
    principal: Principal,
    org_id: int,
    workspace_id: int,
    participant_id: int,
    body: Mapping[str, Any],
) -> None:
    _, who = workspace(session, principal, org_id, workspace_id, "UpdateWorkspaceParticipantRole")
    found = _participant(session, workspace_id, participant_id)
    role = fields.one_of(fields.required_object(body, "body").get("role"), "role", ROLES)
    if role == "owner" and who.workspace_role != "owner":
        raise Forbidden("role: only an owner may make another owner")
    found.role = role
    session.commit()


# --- what a user takes part in ------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """An entry of GET /user/{userId}/workspaces: an organization (workspace None) or a
    workspace of it, with the user's roles there."""

    org: Organization
    workspace: Workspace | None
    roles: list[str]


def places(session: Session, principal: Principal, user_id: int) -> list[Place]:
    """The organizations and workspaces of ``user_id``; for a token limited to a
    workspace, that workspace and its organization only."""
    fields.for_people(principal, limited_ok=True)
    if user_id != principal.user_id and not principal.acts_as_admin:
        raise Forbidden("userId: you may list your own workspaces only")
    # User ids are 32-bit integers (a larger one would not reach the database's column).
    if not 0 < user_id <= INT32_MAX or session.get(User, user_id) is None:
        raise NotFound(f"userId: no user {user_id}")
    found: list[Place] = []
    memberships = session.execute(
        select(OrgMember, Organization)
        .join(Organization, Organization.id == OrgMember.org_id)
        .where(OrgMember.user_id == user_id)
        .order_by(Organization.name)
    ).all()
    for member, org in memberships:
        found.append(Place(org, None, [member.role]))
        workspaces = session.execute(
            select(Workspace).where(Workspace.org_id == org.id).order_by(Workspace.name)
        ).scalars()
        for ws in workspaces:
            role = workspace_role(session, user_id, ws)
            if role is not None:
                found.append(Place(org, ws, [role]))
    if principal.limited_to is not None:
        limit = principal.limited_to
        orgs = {p.org.id for p in found if p.workspace is not None and p.workspace.id == limit}
        found = [
            p
            for p in found
            if (p.workspace.id == limit if p.workspace is not None else p.org.id in orgs)
        ]
    return found
