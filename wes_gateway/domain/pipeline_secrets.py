"""Pipeline secrets, in Seqera's shapes: a name and a value, of a workspace or of a user,
that a launch names (``workspaceSecrets``, ``userSecrets``) and the pipeline reads as
``secrets.NAME``.

Values are sealed as they arrive (``infra.sealing``) and shown to no one again; the
workers open them only to hand a head job its secrets file (see ``for_run``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wes_gateway.domain.credentials import scope_for, scope_of
from wes_gateway.domain.errors import Conflict, Forbidden, InvalidField
from wes_gateway.domain.ids import INT32_MAX
from wes_gateway.domain.models import PipelineSecret
from wes_gateway.domain.tenancy_fields import commit_unique
from wes_gateway.domain.tokens import Principal
from wes_gateway.infra.db import utcnow
from wes_gateway.infra.sealing import CannotOpen, Sealer

# Seqera's rule: a letter or _ first, then letters, digits and single underscores.
NAME = re.compile(r"^[a-zA-Z_](?:[0-9A-Za-z]+|(_)(?!\1)){1,49}$")
NAME_RULE = "2 to 50 letters, digits or '_' (no two in a row), starting with a letter or '_'"
MAX_VALUE_CHARS = 32_000
# The launch options that name secrets, and where each looks them up.
USER_OPTION, WORKSPACE_OPTION = "user_secrets", "workspace_secrets"


def _person(principal: Principal) -> None:
    if principal.run_id is not None:
        raise Forbidden("a run's own token cannot read or manage pipeline secrets")


def check_name(name: Any, where: str = "name") -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidField(where, f"must be {NAME_RULE}")
    return name


def _value(body: Mapping[str, Any]) -> str:
    value = body.get("value")
    if not isinstance(value, str) or value == "":
        raise InvalidField("value", "must be a non-empty string")
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidField("value", f"must be at most {MAX_VALUE_CHARS} characters")
    return value


def _taken(session: Session, scope: str, name: str) -> bool:
    query = select(PipelineSecret.id).where(
        PipelineSecret.scope == scope, PipelineSecret.name == name
    )
    return session.execute(query.limit(1)).first() is not None


def create(session: Session, principal: Principal, body: Any, sealer: Sealer) -> PipelineSecret:
    _person(principal)
    if not isinstance(body, Mapping):
        raise InvalidField("body", "must be an object {name, value}")
    name = check_name(body.get("name"))
    value = _value(body)
    scope = scope_of(principal)
    if _taken(session, scope, name):
        raise InvalidField("name", f"a pipeline secret named {name!r} already exists here")
    row = PipelineSecret(
        scope=scope,
        owner_id=principal.user_id,
        workspace_id=principal.workspace_id,
        name=name,
        sealed=sealer.seal(value),
    )
    session.add(row)
    commit_unique(
        session, InvalidField("name", f"a pipeline secret named {name!r} already exists here")
    )
    return row


def list_secrets(session: Session, principal: Principal) -> list[PipelineSecret]:
    _person(principal)
    query = select(PipelineSecret).where(PipelineSecret.scope == scope_of(principal))
    return list(session.execute(query.order_by(PipelineSecret.name)).scalars())


def get(session: Session, principal: Principal, secret_id: int) -> PipelineSecret:
    _person(principal)
    row = session.get(PipelineSecret, secret_id) if 0 < secret_id <= INT32_MAX else None
    if row is None or row.scope != scope_of(principal):
        # Seqera's answer for a secret not found where the caller acts is a 403.
        raise Forbidden(f"secretId: no pipeline secret {secret_id} here")
    return row


def update(
    session: Session, principal: Principal, secret_id: int, body: Any, sealer: Sealer
) -> None:
    row = get(session, principal, secret_id)
    if not isinstance(body, Mapping):
        raise InvalidField("body", "must be an object {value}")
    row.sealed = sealer.seal(_value(body))
    row.updated_at = utcnow()
    session.commit()


def delete(session: Session, principal: Principal, secret_id: int) -> None:
    row = get(session, principal, secret_id)
    session.delete(row)
    session.commit()


def validate_name(session: Session, principal: Principal, name: Any) -> None:
    _person(principal)
    if name is None:
        raise InvalidField("name", "is required")
    check_name(name)
    if _taken(session, scope_of(principal), name):
        raise Conflict(f"name: a pipeline secret named {name!r} already exists here")


# --- launches and head jobs -----------------------------------------------------------


def names(option: str | None) -> list[str]:
    """The secret names a launch option holds (comma-separated)."""
    return [part for part in (option or "").split(",") if part]


def check_option(value: str, field: str) -> str:
    """A launch option naming secrets: comma-separated secret names."""
    for name in names(value):
        check_name(name, field)
    return value


def _scopes(workspace_id: int | None, user_id: int) -> dict[str, str]:
    return {USER_OPTION: f"u{user_id}", WORKSPACE_OPTION: scope_for(workspace_id, user_id)}


def check_launch(
    session: Session,
    principal: Principal,
    options: Mapping[str, str],
    platform: str,
    field_name,
) -> None:
    """Every secret a launch names exists where it is looked up, and the run goes where
    secrets can reach its head job (a local one: a secrets file)."""
    scopes = _scopes(principal.workspace_id, principal.user_id)
    for option, scope in scopes.items():
        wanted = names(options.get(option))
        if not wanted:
            continue
        where = field_name(f"workflow_engine_parameters.{option}")
        if platform != "local-platform":
            raise InvalidField(
                where, f"pipeline secrets reach local head jobs only, not {platform} ones"
            )
        found = set(
            session.execute(
                select(PipelineSecret.name).where(
                    PipelineSecret.scope == scope, PipelineSecret.name.in_(wanted)
                )
            ).scalars()
        )
        missing = [name for name in wanted if name not in found]
        if missing:
            place = "of yours" if option == USER_OPTION else "in this workspace"
            raise InvalidField(where, f"no pipeline secret named {missing[0]!r} {place}")


class SecretsUnusable(Exception):
    """A named secret that is gone, or that no configured key opens."""


def for_run(
    session: Session,
    options: Mapping[str, str],
    workspace_id: int | None,
    owner_id: int,
    sealer: Sealer,
) -> dict[str, str]:
    """The secrets a run named, by name, opened (a workspace secret wins over a user's of
    the same name, as on Seqera)."""
    opened: dict[str, str] = {}
    for option, scope in _scopes(workspace_id, owner_id).items():
        for name in names(options.get(option)):
            row = session.execute(
                select(PipelineSecret).where(
                    PipelineSecret.scope == scope, PipelineSecret.name == name
                )
            ).scalar_one_or_none()
            if row is None:
                raise SecretsUnusable(f"the pipeline secret {name!r} no longer exists")
            try:
                opened[name] = sealer.open(row.sealed)
            except CannotOpen as exc:
                problem = f"the pipeline secret {name!r} cannot be opened: {exc}"
                raise SecretsUnusable(problem) from None
            row.last_used_at = utcnow()
    return opened


def count(session: Session, principal: Principal) -> int:
    query = select(func.count()).where(PipelineSecret.scope == scope_of(principal))
    return session.execute(query).scalar_one()
