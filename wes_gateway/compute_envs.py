"""Compute environments: where head jobs run, shared by all users and managed by admins.

A compute environment names a platform and its config (see ``compute_config``). Every
user may list them and launch on them; only administrators create, delete or make one
primary, because a compute environment spends the workers' cloud credentials. The
primary one takes runs that name none; the built-in ``local`` one (the workers' own
machine) is primary until another is chosen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wes_gateway import compute_config
from wes_gateway.auth import Principal
from wes_gateway.db import utcnow
from wes_gateway.errors import BadRequest, Conflict, Forbidden, InvalidField, NotFound
from wes_gateway.ids import random_id
from wes_gateway.models import ComputeEnv

BUILTIN_ID = "local"
ID_LENGTH = 22  # Seqera's compute environment ids are 22 base62 characters
STATUSES = ("CREATING", "AVAILABLE", "DISABLED", "DELETING", "ERRORED", "INVALID", "DELETED")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def _admin(principal: Principal, action: str) -> None:
    if not principal.acts_as_admin:
        raise Forbidden(f"only administrators may {action} compute environments")


def create(session: Session, principal: Principal, body: Mapping[str, Any]) -> ComputeEnv:
    _admin(principal, "create")
    spec = body.get("computeEnv")
    if not isinstance(spec, Mapping):
        raise InvalidField("computeEnv", "is required: {name, platform, config}")
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidField("computeEnv.name", "must be 1-100 letters, digits, '_', '.' or '-'")
    if spec.get("credentialsId") is not None:
        raise InvalidField(
            "computeEnv.credentialsId",
            "stored credentials are not kept here; the workers use their cloud SDK's "
            "default credentials (environment, instance or workload identity)",
        )
    platform = compute_config.check_platform(spec.get("platform"))
    config = compute_config.check_config(platform, spec.get("config"))
    description = spec.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 2000):
        raise InvalidField("computeEnv.description", "must be a string of at most 2000 characters")
    taken = select(ComputeEnv.id).where(ComputeEnv.name == name, ~ComputeEnv.deleted)
    if session.execute(taken.limit(1)).first() is not None:
        raise Conflict(f"a compute environment named {name!r} already exists")
    env = ComputeEnv(
        id=random_id(ID_LENGTH),
        owner_id=principal.user_id,
        name=name,
        description=description,
        platform=platform,
        config=config,
        # A cloud one is tried by a worker first (dispatch.check_compute_env).
        status="AVAILABLE" if platform == compute_config.LOCAL else "CREATING",
        primary=False,
    )
    session.add(env)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"a compute environment named {name!r} already exists") from None
    return env


def list_envs(session: Session, status: str | None = None) -> list[ComputeEnv]:
    query = select(ComputeEnv).where(~ComputeEnv.deleted)
    if status is not None:
        wanted = [part.strip().upper() for part in status.split(",") if part.strip()]
        unknown = set(wanted) - set(STATUSES)
        if unknown:
            raise InvalidField("status", f"unknown status {sorted(unknown)[0]}; one of {STATUSES}")
        query = query.where(ComputeEnv.status.in_(wanted))
    return list(session.execute(query.order_by(ComputeEnv.created_at, ComputeEnv.id)).scalars())


def get(session: Session, env_id: str) -> ComputeEnv:
    env = session.get(ComputeEnv, env_id)
    if env is None or env.deleted:
        raise NotFound(f"compute environment {env_id!r} not found")
    return env


def delete(session: Session, principal: Principal, env_id: str) -> None:
    """Retire a compute environment. Runs still on it keep being watched (the row stays,
    marked deleted); it takes no new runs."""
    _admin(principal, "delete")
    env = get(session, env_id)
    env.deleted = True
    env.primary = False
    env.status = "DELETED"
    env.updated_at = utcnow()
    session.commit()


def make_primary(session: Session, principal: Principal, env_id: str) -> None:
    _admin(principal, "choose the primary of")
    env = get(session, env_id)
    session.execute(update(ComputeEnv).where(ComputeEnv.id != env.id).values(primary=False))
    env.primary = True
    env.updated_at = utcnow()
    session.commit()


def for_new_run(session: Session, env_id: str | None, field: str) -> str | None:
    """The compute environment a new run goes to: the one named (``field`` says where),
    else the primary; None means the workers' own machine."""
    if env_id is None:
        primary = session.execute(
            select(ComputeEnv.id).where(ComputeEnv.primary, ~ComputeEnv.deleted)
        ).scalar_one_or_none()
        return primary
    env = session.get(ComputeEnv, env_id)
    if env is None or env.deleted:
        raise InvalidField(field, f"no compute environment {env_id!r}")
    if env.status not in ("AVAILABLE", "CREATING"):
        why = f": {env.message}" if env.message else ""
        raise BadRequest(f"{field}: compute environment {env_id!r} is {env.status}{why}")
    return env.id
