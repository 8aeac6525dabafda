"""Tower handlers of an organization's teams (operationIds of the ``teams`` tag)."""

from __future__ import annotations

from typing import Any

from connexion import NoContent

from wes_gateway.domain import teams
from wes_gateway.http.context import principal
from wes_gateway.http.runtime import request_session
from wes_gateway.http.tower import views


def list_organization_teams(org_id: int, token_info: dict, max_=None, offset=None, search=None):
    found, total = teams.list_teams(
        request_session(), principal(token_info), org_id, max_=max_, offset=offset, search=search
    )
    return {"teams": [views.team(view) for view in found], "totalSize": total}


def create_organization_team(org_id: int, body: dict[str, Any], token_info: dict):
    view = teams.create_team(request_session(), principal(token_info), org_id, body)
    return {"team": views.team(view)}


def validate_team_name(org_id: int, token_info: dict, name=None):
    teams.validate_name(request_session(), principal(token_info), org_id, name)
    return NoContent, 204


def describe_organization_team(org_id: int, team_id: int, token_info: dict):
    view = teams.describe_team(request_session(), principal(token_info), org_id, team_id)
    return {"team": views.team(view)}


def update_organization_team(org_id: int, team_id: int, body: dict[str, Any], token_info: dict):
    teams.update_team(request_session(), principal(token_info), org_id, team_id, body)
    return NoContent, 204


def delete_organization_team(org_id: int, team_id: int, token_info: dict):
    teams.delete_team(request_session(), principal(token_info), org_id, team_id)
    return NoContent, 204


def list_organization_team_members(
    org_id: int, team_id: int, token_info: dict, max_=None, offset=None, search=None
):
    rows, total = teams.list_team_members(
        request_session(),
        principal(token_info),
        org_id,
        team_id,
        max_=max_,
        offset=offset,
        search=search,
    )
    return {"members": [views.member(row, user) for row, user in rows], "totalSize": total}


def create_organization_team_member(
    org_id: int, team_id: int, body: dict[str, Any], token_info: dict
):
    row, user = teams.add_team_member(
        request_session(), principal(token_info), org_id, team_id, body
    )
    return {"member": views.member(row, user)}


def delete_organization_team_member(org_id: int, team_id: int, member_id: int, token_info: dict):
    teams.delete_team_member(request_session(), principal(token_info), org_id, team_id, member_id)
    return NoContent, 204


def list_workspaces_by_team(
    org_id: int, team_id: int, token_info: dict, max_=None, offset=None, search=None
):
    found, total = teams.team_workspaces(
        request_session(),
        principal(token_info),
        org_id,
        team_id,
        max_=max_,
        offset=offset,
        search=search,
    )
    return {"workspaces": [views.team_place(place) for place in found], "totalSize": total}
