"""Teams of an organization, as Seqera has them: a named group of the organization's
members that takes part in workspaces as one participant (its role applies to each
member; a member's best role wins, see ``tenancy.workspace_role``).

Owners of the organization manage teams and their members; its members read them;
collaborators (people invited to single workspaces) see no teams. Adding a user who is
not in the organization makes them a member of it, as Seqera does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wes_gateway.domain import tenancy
from wes_gateway.domain import tenancy_fields as fields
from wes_gateway.domain.errors import Conflict, Forbidden, InvalidField
from wes_gateway.domain.models import (
    Organization,
    OrgMember,
    Participant,
    Team,
    TeamMember,
    User,
    Workspace,
)
from wes_gateway.domain.tokens import Principal

DESCRIPTION_LIMIT = 250  # Seqera's Team.description maxLength


@dataclass(frozen=True)
class TeamView:
    team: Team
    members_count: int


@dataclass(frozen=True)
class TeamPlace:
    """A workspace a team takes part in, and the team's participation there."""

    participant: Participant
    workspace: Workspace
    org_name: str


def _reader(session: Session, principal: Principal, org_id: int) -> Organization:
    """Owners and members of the organization read its teams; collaborators do not."""
    org, member = tenancy.organization(session, principal, org_id)
    if member is not None and member.role == "collaborator" and not principal.acts_as_admin:
        raise Forbidden(f"orgId: collaborators of organization {org_id} see no teams")
    return org


def _owner(session: Session, principal: Principal, org_id: int) -> None:
    tenancy.organization(session, principal, org_id, owner=True)


def _team(session: Session, org_id: int, team_id: int) -> Team:
    team = session.get(Team, team_id)
    if team is None or team.org_id != org_id:
        raise InvalidField("teamId", f"no team {team_id} in organization {org_id}")
    return team


def _count(session: Session, team_ids: list[int]) -> dict[int, int]:
    if not team_ids:
        return {}
    rows = session.execute(
        select(TeamMember.team_id, func.count())
        .where(TeamMember.team_id.in_(team_ids))
        .group_by(TeamMember.team_id)
    ).all()
    return {team_id: count for team_id, count in rows}


def _views(session: Session, teams: list[Team]) -> list[TeamView]:
    counts = _count(session, [team.id for team in teams])
    return [TeamView(team, counts.get(team.id, 0)) for team in teams]


def _description(spec: Mapping[str, Any], field: str) -> str | None:
    return fields.text(spec, "description", field, DESCRIPTION_LIMIT)


def _taken(session: Session, org_id: int, name: str, but: int | None = None) -> bool:
    query = select(Team.id).where(Team.org_id == org_id, func.lower(Team.name) == name.lower())
    if but is not None:
        query = query.where(Team.id != but)
    return session.execute(query.limit(1)).first() is not None


def list_teams(
    session: Session,
    principal: Principal,
    org_id: int,
    *,
    max_: int | None = None,
    offset: int | None = None,
    search: str | None = None,
) -> tuple[list[TeamView], int]:
    _reader(session, principal, org_id)
    rows, total = fields.page(
        session,
        select(Team).where(Team.org_id == org_id),
        Team.name,
        max_=max_,
        offset=offset,
        search=search,
        named=Team.name,
    )
    return _views(session, [team for (team,) in rows]), total


def validate_name(session: Session, principal: Principal, org_id: int, name: Any) -> None:
    """204 when ``name`` may name a new team; else 400, as Seqera answers both a name
    that breaks the rule and one taken."""
    _reader(session, principal, org_id)
    checked = fields.name({"name": name}, "name")
    if _taken(session, org_id, checked):
        raise InvalidField(
            "name", f"a team named {checked!r} already exists in organization {org_id}"
        )


def create_team(
    session: Session, principal: Principal, org_id: int, body: Mapping[str, Any]
) -> TeamView:
    _owner(session, principal, org_id)
    body = fields.required_object(body, "body")
    if body.get("idpGroupId") is not None:
        raise InvalidField("idpGroupId", "identity-provider groups are not linked to teams here")
    spec = fields.required_object(body.get("team"), "team")
    fields.ignored_id(spec, "team.id")
    name = fields.name(spec, "team.name")
    team = Team(org_id=org_id, name=name, description=_description(spec, "team.description"))
    if _taken(session, org_id, name):
        raise Conflict(f"a team named {name!r} already exists in organization {org_id}")
    session.add(team)
    fields.commit_unique(session, f"a team named {name!r} in organization {org_id}")
    return TeamView(team, 0)


def describe_team(session: Session, principal: Principal, org_id: int, team_id: int) -> TeamView:
    _reader(session, principal, org_id)
    (view,) = _views(session, [_team(session, org_id, team_id)])
    return view


def update_team(
    session: Session, principal: Principal, org_id: int, team_id: int, body: Mapping[str, Any]
) -> None:
    _owner(session, principal, org_id)
    team = _team(session, org_id, team_id)
    body = fields.required_object(body, "body")
    if body.get("idpGroupId") is not None:
        raise InvalidField("idpGroupId", "identity-provider groups are not linked to teams here")
    if body.get("name") is not None:
        name = fields.name(body, "name")
        if _taken(session, org_id, name, but=team.id):
            raise Conflict(f"a team named {name!r} already exists in organization {org_id}")
        team.name = name
    if "description" in body:
        team.description = _description(body, "description")
    fields.commit_unique(session, f"a team named {team.name!r} in organization {org_id}")


def delete_team(session: Session, principal: Principal, org_id: int, team_id: int) -> None:
    """The team, its membership list and its roles in workspaces go (the database
    cascades); its members stay in the organization with the roles of their own."""
    _owner(session, principal, org_id)
    team = _team(session, org_id, team_id)
    session.delete(team)
    session.commit()


def list_team_members(
    session: Session,
    principal: Principal,
    org_id: int,
    team_id: int,
    *,
    max_: int | None = None,
    offset: int | None = None,
    search: str | None = None,
) -> tuple[list[tuple[OrgMember, User]], int]:
    _reader(session, principal, org_id)
    team = _team(session, org_id, team_id)
    query = (
        select(OrgMember, User)
        .join(TeamMember, TeamMember.member_id == OrgMember.id)
        .join(User, User.id == OrgMember.user_id)
        .where(TeamMember.team_id == team.id)
    )
    rows, total = fields.page(
        session, query, User.name, max_=max_, offset=offset, search=search, named=User.name
    )
    return [(member, user) for member, user in rows], total


def add_team_member(
    session: Session, principal: Principal, org_id: int, team_id: int, body: Mapping[str, Any]
) -> tuple[OrgMember, User]:
    _owner(session, principal, org_id)
    team = _team(session, org_id, team_id)
    body = fields.required_object(body, "body")
    user = tenancy.user_named(session, body.get("userNameOrEmail"), "userNameOrEmail")
    member = tenancy.membership(session, org_id, user.id)
    if member is None:
        member = OrgMember(org_id=org_id, user_id=user.id, role="member")
        session.add(member)
        session.flush()
    elif session.get(TeamMember, (team.id, member.id)) is not None:
        # Seqera answers 400 here (its spec has no 409 for this call).
        raise InvalidField(
            "userNameOrEmail", f"user {user.name!r} is already a member of team {team.name!r}"
        )
    session.add(TeamMember(team_id=team.id, member_id=member.id))
    fields.commit_unique(session, f"user {user.name!r} in team {team.name!r}")
    return member, user


def delete_team_member(
    session: Session, principal: Principal, org_id: int, team_id: int, member_id: int
) -> None:
    _owner(session, principal, org_id)
    team = _team(session, org_id, team_id)
    found = session.get(TeamMember, (team.id, member_id))
    if found is None:
        raise InvalidField("memberId", f"no member {member_id} in team {team.name!r}")
    session.delete(found)
    session.commit()


def team_workspaces(
    session: Session,
    principal: Principal,
    org_id: int,
    team_id: int,
    *,
    max_: int | None = None,
    offset: int | None = None,
    search: str | None = None,
) -> tuple[list[TeamPlace], int]:
    org = _reader(session, principal, org_id)
    team = _team(session, org_id, team_id)
    query = (
        select(Participant, Workspace)
        .join(Workspace, Workspace.id == Participant.workspace_id)
        .where(Participant.team_id == team.id)
    )
    rows, total = fields.page(
        session,
        query,
        Workspace.name,
        max_=max_,
        offset=offset,
        search=search,
        named=Workspace.name,
    )
    return [TeamPlace(participant, ws, org.name) for participant, ws in rows], total
