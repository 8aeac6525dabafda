"""The fields of tenancy requests (organizations, workspaces, teams, members): Seqera's
name rule, bounded texts, int64 ids and roles, each refused with the field named, and
the commit that turns a taken unique name into a 409."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wes_gateway.domain.errors import ApiError, Conflict, Forbidden, InvalidField
from wes_gateway.domain.ids import INT64_MAX
from wes_gateway.domain.tokens import Principal

# Seqera's rule for organization and workspace names.
NAME = re.compile(r"^[a-zA-Z\d](?:[a-zA-Z\d]|[-_](?=[a-zA-Z\d])){1,38}$")
NAME_RULE = (
    "2 to 40 letters, digits, '-' or '_', starting and ending with a letter or digit, "
    "no two '-' or '_' in a row"
)


def text(body: Mapping[str, Any], key: str, field: str, limit: int, required=False):
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidField(field, "is required")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidField(field, f"must be a string of at most {limit} characters")
    return value


def name(body: Mapping[str, Any], field: str, required=True) -> str | None:
    value = body.get("name")
    if value is None and not required:
        return None
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise InvalidField(field, f"must be {NAME_RULE}")
    return value


def required_object(body: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidField(field, "is required (an object)")
    return body


def int64(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise InvalidField(field, "must be an integer between 0 and 2^63-1")
    return value


def ignored_id(spec: Mapping[str, Any], field: str) -> None:
    """A read-only ``id`` sent back is ignored, but must still be an int64."""
    if spec.get("id") is not None:
        int64(spec["id"], field)


def one_of(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        raise InvalidField(field, f"must be one of {', '.join(allowed)}")
    return value.lower()


def commit_unique(session: Session, conflict: str | ApiError) -> None:
    """Commit; a unique constraint the commit breaks is ``conflict``: the error itself,
    or a 409 saying that the thing it names already exists."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if isinstance(conflict, ApiError):
            raise conflict from None
        raise Conflict(f"{conflict} already exists") from None


def for_people(principal: Principal, *, limited_ok: bool = False) -> None:
    """Tenancy is for people: a run's own token (its head job's) may not touch it, nor
    may a token limited to one workspace manage organizations (``limited_ok``: the
    calls that stay inside its workspace, where ``acting`` holds it)."""
    if principal.run_id is not None:
        raise Forbidden("a run-scoped token cannot act on organizations or workspaces")
    if principal.limited_to is not None and not limited_ok:
        raise Forbidden(
            f"this token is limited to workspace {principal.limited_to}: "
            "it cannot manage organizations"
        )


def page(
    session: Session,
    query: Select,
    *order_by: Any,
    max_: int | None,
    offset: int | None,
    search: str | None = None,
    named: Any = None,
) -> tuple[list[Any], int]:
    """One page of ``query`` as Seqera's lists page (``max``, ``offset``) and how many
    rows there are in all; ``search`` keeps the rows whose ``named`` column starts with
    it, in any case."""
    if search:
        query = query.where(func.lower(named).startswith(search.lower(), autoescape=True))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    query = query.order_by(*order_by).offset(max(offset or 0, 0))
    if max_ is not None:
        query = query.limit(max(max_, 0))
    return list(session.execute(query).all()), total
