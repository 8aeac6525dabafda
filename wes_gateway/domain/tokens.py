"""API tokens: how they are made, stored (hashed) and checked.

A token reads as a Seqera-style personal access token: base64 of ``{"tid":<id>}.<secret>``.
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
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from wes_gateway.domain.errors import Conflict, Forbidden, InvalidField, NotFound
from wes_gateway.domain.models import ApiToken, User

TOKEN_ID_LENGTH = 12  # the string ids of tokens made before tokens had numbers
# Public token numbers stay below 2**53, so a JavaScript client reads them exactly.
NUMBER_LIMIT = 2**53 - 1
NAME_LIMIT = 50  # Seqera's AccessToken.name
# What a token may do. "read": GET, HEAD and OPTIONS only.
SCOPE_ALL = "all"
SCOPE_READ = "read"
SCOPES = (SCOPE_ALL, SCOPE_READ)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)
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
    scope: str = SCOPE_ALL  # SCOPE_READ: safe methods only
    # Where the request acts (tenancy.acting sets them): a workspace id, None for the
    # personal workspace; the caller's role there.
    workspace_id: int | None = None
    workspace_role: str | None = None
    # The one workspace the token may act in (None: wherever its user may).
    limited_to: int | None = None

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
            "scope": self.scope,
            "wsp": self.limited_to,
        }

    @classmethod
    def from_claims(cls, claims: dict[str, object]) -> Principal:
        return cls(
            user_id=int(claims["uid"]),  # type: ignore[arg-type]
            user_name=str(claims["sub"]),
            is_admin=bool(claims["admin"]),
            token_id=str(claims["tid"]),
            run_id=claims.get("run"),  # type: ignore[arg-type]
            scope=str(claims.get("scope") or SCOPE_ALL),
            limited_to=claims.get("wsp"),  # type: ignore[arg-type]
        )

    def scope_refusal(self, method: str) -> str | None:
        """Why this principal may not make a ``method`` request, or None when it may."""
        if self.scope == SCOPE_READ and method.upper() not in READ_METHODS:
            return (
                f"token scope '{SCOPE_READ}': this token may only read (GET), not {method.upper()}"
            )
        return None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def format_token(token_id: str | int, secret: str) -> str:
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
    if isinstance(token_id, int) and not isinstance(token_id, bool) and token_id > 0:
        token_id = str(token_id)
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
        user = User(name=name, is_admin=admin, made_by="operator")
        session.add(user)
        session.flush()
    elif admin and not user.is_admin:
        user.is_admin = True
    return user


def check_token_name(name: object, field: str = "name") -> str:
    if not isinstance(name, str) or not name:
        raise InvalidField(field, "must be a non-empty string")
    if len(name) > NAME_LIMIT:
        raise InvalidField(field, f"must be at most {NAME_LIMIT} characters")
    return name


def check_scope(scope: object, field: str = "scope") -> str:
    if scope not in SCOPES:
        raise InvalidField(field, "must be one of " + ", ".join(repr(s) for s in SCOPES))
    return scope  # type: ignore[return-value]


def _new_number(session: Session) -> int:
    while True:
        number = secrets.randbelow(NUMBER_LIMIT) + 1
        taken = session.execute(
            select(ApiToken.id).where((ApiToken.number == number) | (ApiToken.id == str(number)))
        ).first()
        if taken is None:
            return number


def create_token(
    session: Session,
    user: User,
    *,
    run_id: str | None = None,
    description: str | None = None,
    scope: str = SCOPE_ALL,
    lifetime: timedelta | None = None,
    workspace_id: int | None = None,
) -> tuple[ApiToken, str]:
    """Store a new token for ``user``; returns the row and the token text (shown once).
    Its id is the decimal text of its public number, which its text carries as ``tid``."""
    check_scope(scope)
    number = _new_number(session)
    secret = secrets.token_hex(24)
    row = ApiToken(
        id=str(number),
        number=number,
        user_id=user.id,
        secret_hash=_hash(secret),
        run_id=run_id,
        description=description,
        scope=scope,
        expires_at=datetime.now(UTC) + lifetime if lifetime is not None else None,
        workspace_id=workspace_id,
    )
    session.add(row)
    session.flush()
    return row, format_token(number, secret)


def token_name(row: ApiToken) -> str:
    """A token's name as the API lists it (tokens made by the CLI may have none)."""
    return (row.description or f"token-{row.number}")[:NAME_LIMIT]


def _personal_tokens(session: Session, user_id: int):
    return select(ApiToken).where(
        ApiToken.user_id == user_id,
        ApiToken.run_id.is_(None),
        ApiToken.revoked_at.is_(None),
        ApiToken.expires_at.is_(None) | (ApiToken.expires_at > datetime.now(UTC)),
    )


def _check_personal(who: Principal) -> None:
    if who.run_id is not None:
        raise Forbidden("a run's token cannot manage API tokens")


def list_tokens(session: Session, who: Principal) -> list[ApiToken]:
    """The caller's own live personal tokens (not the run tokens of its head jobs)."""
    _check_personal(who)
    rows = session.execute(
        _personal_tokens(session, who.user_id).order_by(ApiToken.created_at, ApiToken.id)
    )
    return list(rows.scalars())


def create_personal_token(
    session: Session,
    who: Principal,
    name: object,
    scope: object = None,
    workspace_id: int | None = None,
    expires_in_days: int | None = None,
) -> tuple[ApiToken, str]:
    """A new token for the caller, named ``name`` (unique among the caller's live tokens,
    as Seqera's 409 says), limited to ``workspace_id`` when given (the caller's part in
    it is checked by tenancy before), ending after ``expires_in_days`` when given. A
    read-only caller cannot mint a token that may write, nor a token limited to a
    workspace one that is not."""
    _check_personal(who)
    name = check_token_name(name)
    scope = check_scope(SCOPE_ALL if scope is None else scope)
    if who.scope != SCOPE_ALL and scope != who.scope:
        raise Forbidden(f"token scope '{who.scope}': cannot create a token of scope '{scope}'")
    if who.limited_to is not None and workspace_id != who.limited_to:
        raise Forbidden(
            f"workspaceId: this token is limited to workspace {who.limited_to}; "
            "so is every token it makes"
        )
    for row in session.execute(_personal_tokens(session, who.user_id)).scalars():
        if token_name(row) == name:
            raise Conflict(f"name: a token named {name!r} already exists")
    user = session.get(User, who.user_id)
    if user is None:
        raise NotFound("no such user")
    lifetime = timedelta(days=expires_in_days) if expires_in_days is not None else None
    made = create_token(
        session,
        user,
        description=name,
        scope=scope,
        workspace_id=workspace_id,
        lifetime=lifetime,
    )
    session.commit()
    return made


def delete_personal_token(session: Session, who: Principal, number: int) -> None:
    """Revoke the caller's token ``number`` (an administrator may revoke anyone's)."""
    _check_personal(who)
    row = session.execute(
        select(ApiToken).where(ApiToken.number == number, ApiToken.run_id.is_(None))
    ).scalar_one_or_none()
    if (
        row is None
        or row.revoked_at is not None
        or (row.user_id != who.user_id and not who.acts_as_admin)
    ):
        raise NotFound(f"tokenId: no token {number}")
    row.revoked_at = datetime.now(UTC)
    session.commit()


def delete_all_personal_tokens(session: Session, who: Principal) -> None:
    """Revoke every live personal token of the caller (the one in use included)."""
    _check_personal(who)
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.user_id == who.user_id,
            ApiToken.run_id.is_(None),
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    session.commit()


def revoke_token(session: Session, token_id: str) -> bool:
    row = session.get(ApiToken, token_id)
    if row is None and token_id.isdigit():
        row = session.execute(
            select(ApiToken).where(ApiToken.number == int(token_id))
        ).scalar_one_or_none()
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


def in_force(session: Session, token_id: str) -> bool:
    """Whether the API token ``token_id`` still works (not revoked, not expired). A
    single sign-on session's JWT (``oidc``) has no row: it ends with its own lifetime."""
    if token_id == "oidc":
        return True
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    return row.expires_at is None or row.expires_at > datetime.now(UTC)


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
    now = datetime.now(UTC)
    if token_row.expires_at is not None and token_row.expires_at <= now:
        return None
    if token_row.run_id is None and (
        token_row.last_used_at is None or now - token_row.last_used_at >= LAST_USED_RESOLUTION
    ):
        token_row.last_used_at = now
    return Principal(
        user_id=user.id,
        user_name=user.name,
        is_admin=user.is_admin,
        token_id=token_row.id,
        run_id=token_row.run_id,
        scope=token_row.scope or SCOPE_ALL,
        limited_to=token_row.workspace_id,
    )
