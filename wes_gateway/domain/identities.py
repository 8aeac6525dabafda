"""The people an OpenID provider vouches for, as users of the service.

A provider account is its issuer and subject (``iss``, ``sub``): the one thing about it
that never changes. Its first sign-in makes (or, when the operator allows it, links) a
user, and the link is kept, so later sign-ins reach the same user whatever the name
claim says by then, and no other account of the provider (nor of another provider)
reaches that user by taking the same name: a second account claiming a taken name gets
a name of its own (the name with a digest of its issuer and subject appended).

Administrators: with an admin group configured, an account in the group makes its user
a service administrator, and an account that leaves it loses what the group gave at its
next sign-in or call; an administrator made by the operator (``token create --admin``)
keeps that.
"""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from wes_gateway.domain.errors import InvalidField
from wes_gateway.domain.models import User, UserIdentity
from wes_gateway.domain.tokens import USER_NAME, Principal, check_user_name

# A user name that does not fit USER_NAME is mapped: its unfit characters become "-",
# it is cut to leave room, and the first 8 hex digits of the SHA-256 of the whole claim
# are appended, so two different claims never map to one user ("Ann Lee" -> "Ann-Lee-
# a36e143c"; "ann@example.org" -> "ann-example.org-438c4c7a").
_UNFIT = re.compile(r"[^A-Za-z0-9._-]+")
_STEM = 31  # leaves room for "-" and 8 hex digits within USER_NAME's 40 characters


def _stem(value: str) -> str:
    return _UNFIT.sub("-", value).lstrip("._-")[:_STEM].rstrip("-")


def user_name_for_claim(value: str) -> str:
    """The local user name for an OpenID provider's user name claim ``value``."""
    if USER_NAME.fullmatch(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    stem = _stem(value)
    return f"{stem}-{digest}" if stem else f"user-{digest}"


def _own_name(value: str, issuer: str, subject: str) -> str:
    """The name of an account whose claimed name is another user's."""
    digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:8]
    stem = _stem(user_name_for_claim(value))
    return f"{stem}-{digest}" if stem else f"user-{digest}"


def _claimed_name(claims: dict[str, object], username_claim: str) -> str:
    value = claims.get(username_claim)
    if not isinstance(value, str) or not value:
        value = claims.get("sub")
    if not isinstance(value, str) or not value:
        raise InvalidField(username_claim, "the token names no user (nor sub)")
    return value


def _in_group(claims: dict[str, object], group: str | None) -> bool:
    groups = claims.get("groups")
    if isinstance(groups, str):
        groups = [groups]
    return bool(group) and isinstance(groups, list) and group in groups


def _verified_email(claims: dict[str, object]) -> str | None:
    """The account's address, unless the provider says it is not verified."""
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 255:
        return None
    if claims.get("email_verified") is False:
        return None
    return email.strip().lower()


def _user_for_new_account(
    session: Session, value: str, issuer: str, subject: str, *, link_existing: bool
) -> User:
    name = user_name_for_claim(value)
    check_user_name(name, "userName")
    taken = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if taken is not None:
        linked = session.execute(
            select(UserIdentity.id).where(UserIdentity.user_id == taken.id).limit(1)
        ).first()
        # Users made before accounts were linked (made_by unknown) were matched by name
        # then: their account still finds them.
        if linked is None and (link_existing or taken.made_by is None):
            return taken
        name = _own_name(value, issuer, subject)
        mine = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
        if mine is not None:
            return mine  # made for this account before its link was kept
    user = User(name=name, is_admin=False, made_by="sso")
    session.add(user)
    session.flush()
    return user


def oidc_principal(
    session: Session,
    claims: dict[str, object],
    *,
    username_claim: str = "preferred_username",
    admin_group: str | None = None,
    link_existing: bool = False,
) -> Principal:
    """The principal of a verified OpenID token: the user linked to its account (``iss``
    and ``sub``), made on first sign-in and named by ``username_claim`` (else ``sub``);
    ``link_existing`` lets a first sign-in take over a user of the same name that no
    provider account holds yet (users the operator made before single sign-on); users
    made before accounts were kept are linked so, whatever the setting."""
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not isinstance(subject, str) or not subject:
        raise InvalidField("sub", "the token names no issuer and subject")
    identity = session.execute(
        select(UserIdentity).where(
            UserIdentity.issuer == issuer[:255], UserIdentity.subject == subject[:255]
        )
    ).scalar_one_or_none()
    if identity is None:
        value = _claimed_name(claims, username_claim)
        user = _user_for_new_account(session, value, issuer, subject, link_existing=link_existing)
        identity = UserIdentity(
            issuer=issuer[:255], subject=subject[:255], user_id=user.id, admin_granted=False
        )
        session.add(identity)
        session.flush()
    else:
        user = session.get(User, identity.user_id)
        if user is None:  # pragma: no cover - the link goes with its user
            raise InvalidField("sub", "the account's user is gone")
    email = _verified_email(claims)
    if email is not None and user.email != email:
        user.email = email
    if admin_group:
        in_group = _in_group(claims, admin_group)
        if in_group and not user.is_admin:
            user.is_admin, identity.admin_granted = True, True
        elif not in_group and identity.admin_granted:
            user.is_admin, identity.admin_granted = False, False
    return Principal(
        user_id=user.id,
        user_name=user.name,
        is_admin=user.is_admin,
        token_id="oidc",
    )
