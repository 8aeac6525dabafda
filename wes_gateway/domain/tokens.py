"""API tokens: how they are made, stored (hashed) and checked.

A token reads as a Seqera-style personal access token: base64 of ``{"tid":"<id>"}.<secret>``.
Nextflow's ``-with-tower`` client recognises that shape and sends it as a Bearer token; the
id part names the token publicly (for revocation) and lets us find its row without a scan.
Only the SHA-256 of the secret is stored. Secrets are 192 random bits, so a fast hash is
enough, and the comparison is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from wes_gateway.domain.errors import InvalidField
from wes_gateway.domain.ids import random_id
from wes_gateway.domain.models import ApiToken, User

TOKEN_ID_LENGTH = 12
_DUMMY_HASH = hashlib.sha256(b"no such token").hexdigest()
# Every user name, however the user is made: Seqera's userName is at most 40 characters;
# these are the ones that are safe in a URL, a log line and a -with-tower run's metadata.
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
USER_NAME_RULE = "1 to 40 letters, digits, '.', '_' or '-', starting with a letter or digit"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as."""

    user_id: int
    user_name: str
    is_admin: bool
    token_id: str
    run_id: str | None = None  # set for a run-scoped token: it may touch that run only
    # Where the request acts (tenancy.acting sets them): a workspace id, None for the
    # personal workspace; the caller's role there.
    workspace_id: int | None = None
    workspace_role: str | None = None

    @property
    def acts_as_admin(self) -> bool:
        """Whether this request has a service administrator's rights: an administrator's
        own token does, a run-scoped token never (whoever owns the run)."""
        return self.is_admin and self.run_id is None

    def claims(self) -> dict[str, object]:
        """The token-info dict Connexion hands to handlers."""
        return {
            "sub": self.user_name,
            "uid": self.user_id,
            "admin": self.is_admin,
            "tid": self.token_id,
            "run": self.run_id,
        }

    @classmethod
    def from_claims(cls, claims: dict[str, object]) -> Principal:
        return cls(
            user_id=int(claims["uid"]),  # type: ignore[arg-type]
            user_name=str(claims["sub"]),
            is_admin=bool(claims["admin"]),
            token_id=str(claims["tid"]),
            run_id=claims.get("run"),  # type: ignore[arg-type]
        )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def format_token(token_id: str, secret: str) -> str:
    payload = json.dumps({"tid": token_id}, separators=(",", ":")) + "." + secret
    return base64.b64encode(payload.encode()).decode()


# The head of a token is {"tid":"<id>"}: anything much longer is not one of ours, and is
# not handed to a JSON parser.
_MAX_HEAD = 64


def parse_token(token: str) -> tuple[str, str] | None:
    """Split a presented token into (id, secret), or None when it is not one of ours."""
    try:
        payload = base64.b64decode(token.strip(), validate=True).decode()
        head, secret = payload.split(".", 1)
        if len(head) > _MAX_HEAD:
            return None
        token_id = json.loads(head)["tid"]
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(token_id, str) or not secret:
        return None
    return token_id, secret


def check_user_name(name: object, field: str = "userName") -> str:
    """``name`` if it is a valid user name; a 400 naming ``field`` otherwise."""
    if not isinstance(name, str) or not USER_NAME.fullmatch(name):
        raise InvalidField(field, f"must be {USER_NAME_RULE}")
    return name


def ensure_user(
    session: Session, name: str, *, admin: bool = False, field: str = "userName"
) -> User:
    """The user called ``name``, made if new: the one way a user comes to be, so every
    name follows ``USER_NAME`` (``field`` names it in the error)."""
    check_user_name(name, field)
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        user = User(name=name, is_admin=admin)
        session.add(user)
        session.flush()
    elif admin and not user.is_admin:
        user.is_admin = True
    return user


def create_token(
    session: Session,
    user: User,
    *,
    run_id: str | None = None,
    description: str | None = None,
) -> tuple[ApiToken, str]:
    """Store a new token for ``user``; returns the row and the token text (shown once)."""
    token_id = random_id(TOKEN_ID_LENGTH)
    secret = secrets.token_hex(24)
    row = ApiToken(
        id=token_id,
        user_id=user.id,
        secret_hash=_hash(secret),
        run_id=run_id,
        description=description,
    )
    session.add(row)
    session.flush()
    return row, format_token(token_id, secret)


def revoke_token(session: Session, token_id: str) -> bool:
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = datetime.now(UTC)
    return True


def revoke_run_tokens(session: Session, run_id: str) -> None:
    """Revoke every token scoped to a run (its head job's), as the run is deleted."""
    session.execute(
        update(ApiToken)
        .where(ApiToken.run_id == run_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal behind ``token``, or None when it is unknown, wrong or revoked."""
    parsed = parse_token(token)
    if parsed is None:
        return None
    token_id, secret = parsed
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.id == token_id)
    ).one_or_none()
    expected = row[0].secret_hash if row is not None else _DUMMY_HASH
    matches = hmac.compare_digest(_hash(secret), expected)
    if row is None or not matches or row[0].revoked_at is not None:
        return None
    token_row, user = row
    return Principal(
        user_id=user.id,
        user_name=user.name,
        is_admin=user.is_admin,
        token_id=token_row.id,
        run_id=token_row.run_id,
    )
