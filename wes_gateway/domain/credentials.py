"""Stored credentials, in Seqera's shapes: cloud keys a compute environment names
(``aws``, ``google``), an ``ssh`` key, and git tokens for private pipeline repositories
(``github``, ``gitlab``, ``bitbucket``, ``gitea``).

A credential belongs where it was made: a workspace, or a user's personal workspace. Its
secret fields (``secretKey``, the service-account key ``data``, ``privateKey`` and
``passphrase``, a git ``password`` or ``token``) are sealed (``infra.sealing``) as they
arrive and never shown again: ``keys`` in an answer holds the provider's other fields
only. The workers open them, right before a call that needs them (``open_keys``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from wes_gateway.domain.errors import BadRequest, Conflict, Forbidden, InvalidField
from wes_gateway.domain.ids import random_id
from wes_gateway.domain.models import ComputeEnv, Credential
from wes_gateway.domain.tenancy_fields import commit_unique
from wes_gateway.domain.tokens import Principal
from wes_gateway.infra.db import utcnow
from wes_gateway.infra.sealing import CannotOpen, Sealer
from wes_gateway.infra.ssh_keys import UnusableKey, load_private_key

ID_LENGTH = 22  # Seqera's credentials ids are 22 base62 characters
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
NAME_RULE = "1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit"
MAX_SECRET_CHARS = 64_000

AWS, GOOGLE, SSH = "aws", "google", "ssh"
GIT_PROVIDERS = ("github", "gitlab", "bitbucket", "gitea")
PROVIDERS = (AWS, GOOGLE, SSH, *GIT_PROVIDERS)
# The host of each git provider's public service (a credential without baseUrl is for it).
GIT_HOSTS = {
    "github": "github.com",
    "gitlab": "gitlab.com",
    "bitbucket": "bitbucket.org",
    "gitea": "gitea.com",
}
# The provider of credentials each platform of a compute environment takes (Seqera's
# ``platformId`` filter of the list).
PLATFORM_PROVIDER = {"aws-batch": AWS, "google-batch": GOOGLE, "slurm-platform": SSH}

# Per provider: the fields shown back, the secret ones (sealed, never shown), and the
# secret fields of which one at least is required.
PUBLIC_FIELDS = {
    AWS: ("accessKey", "assumeRoleArn"),
    GOOGLE: ("serviceAccountEmail",),
    SSH: (),
    **{git: ("username",) for git in GIT_PROVIDERS},
}
SECRET_FIELDS = {
    AWS: ("secretKey",),
    GOOGLE: ("data",),
    SSH: ("privateKey", "passphrase"),
    **{git: ("password", "token") for git in GIT_PROVIDERS},
}
_NOT_OFFERED = {
    "mode": "only access keys ('keys') are offered",
    "externalId": "external ids are not offered",
    "workloadIdentityProvider": "workload identity federation is not offered",
    "tokenAudience": "workload identity federation is not offered",
}
_ACCESS_KEY = re.compile(r"[A-Z0-9]{16,128}")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")


@dataclass(frozen=True)
class OpenedKeys:
    """A credential's fields, secret ones included, as a worker uses them. Its repr shows
    the provider and name only, so a log line or traceback never carries a secret."""

    id: str
    name: str
    provider: str
    base_url: str | None
    fields: Mapping[str, str] = field(repr=False)

    def __repr__(self) -> str:
        return f"OpenedKeys({self.provider} {self.name!r})"

    def get(self, key: str) -> str | None:
        return self.fields.get(key) or None


def scope_of(principal: Principal) -> str:
    """Where a name is unique: the workspace, or the user's personal workspace."""
    if principal.workspace_id is not None:
        return f"w{principal.workspace_id}"
    return f"u{principal.user_id}"


def scope_for(workspace_id: int | None, user_id: int) -> str:
    return f"w{workspace_id}" if workspace_id is not None else f"u{user_id}"


def _person(principal: Principal) -> None:
    if principal.run_id is not None:
        raise Forbidden("a run's own token cannot read or manage credentials")


def _text(value: Any, where: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(where, "must be a non-empty string")
    if len(value) > limit:
        raise InvalidField(where, f"must be at most {limit} characters")
    return value


def check_name(name: Any, where: str = "credentials.name") -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidField(where, f"must be {NAME_RULE}")
    return name


def _base_url(provider: str, value: Any) -> str | None:
    if value in (None, ""):
        return None
    if provider not in GIT_PROVIDERS:
        raise InvalidField("credentials.baseUrl", f"is for git providers, not {provider}")
    _text(value, "credentials.baseUrl", 200)
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise InvalidField(
            "credentials.baseUrl",
            "must be an https URL without user info, e.g. https://git.example.org",
        )
    return value.rstrip("/")


def _check_keys(provider: str, keys: Any, *, partial: bool) -> tuple[dict, dict]:
    """The public and the secret fields of ``keys``, each checked. ``partial`` (an
    update) lets the secret fields be left out: the stored ones stay."""
    if not isinstance(keys, Mapping):
        raise InvalidField("credentials.keys", "must be an object")
    public: dict[str, str] = {}
    secret: dict[str, str] = {}
    for key, value in keys.items():
        where = f"credentials.keys.{key}"
        if key == "discriminator":
            if value not in (None, provider):
                raise InvalidField(where, f"must be {provider!r}, the provider")
            continue
        if value in (None, ""):
            continue
        if key in _NOT_OFFERED and not (key == "mode" and value == "keys"):
            raise InvalidField(where, f"not supported: {_NOT_OFFERED[key]}")
        if key == "mode":
            continue
        if key in SECRET_FIELDS[provider]:
            secret[key] = _text(value, where, MAX_SECRET_CHARS)
        elif key in PUBLIC_FIELDS[provider]:
            public[key] = _text(value, where, 2000)
        else:
            known = sorted(PUBLIC_FIELDS[provider] + SECRET_FIELDS[provider])
            raise InvalidField(where, f"is not a field of {provider} credentials; known: {known}")
    if provider == AWS:
        if "accessKey" not in public:
            raise InvalidField("credentials.keys.accessKey", "is required for aws credentials")
        if not _ACCESS_KEY.fullmatch(public["accessKey"]):
            raise InvalidField("credentials.keys.accessKey", "must be an AWS access key id")
        role = public.get("assumeRoleArn")
        if role is not None and not _ROLE_ARN.fullmatch(role):
            raise InvalidField("credentials.keys.assumeRoleArn", "must be an IAM role ARN")
    if provider == GOOGLE and "data" in secret:
        public["serviceAccountEmail"] = _service_account(secret["data"], public)
    if provider == SSH and "privateKey" in secret:
        _check_ssh_key(secret["privateKey"], secret.get("passphrase"))
    if not partial:
        needed = {AWS: ("secretKey",), GOOGLE: ("data",), SSH: ("privateKey",)}.get(
            provider, ("password", "token")
        )
        if not any(key in secret for key in needed):
            raise InvalidField(
                f"credentials.keys.{needed[0]}",
                f"is required for {provider} credentials"
                + (f" (or {needed[1]})" if len(needed) > 1 else ""),
            )
    return public, secret


def _check_ssh_key(private_key: str, passphrase: str | None) -> None:
    """The key opens with the passphrase given beside it (the workers will sign in with
    it: a key they cannot use is refused now rather than when a run needs it)."""
    if "PRIVATE KEY" not in private_key:
        raise InvalidField("credentials.keys.privateKey", "must be a PEM or OpenSSH private key")
    try:
        load_private_key(private_key, passphrase)
    except UnusableKey as exc:
        where = "passphrase" if "passphrase" in str(exc) else "privateKey"
        raise InvalidField(f"credentials.keys.{where}", str(exc)) from None


def _service_account(data: str, public: Mapping[str, str]) -> str:
    """The email of a service-account key (Google's JSON key file)."""
    where = "credentials.keys.data"
    try:
        parsed = json.loads(data)
    except ValueError:
        raise InvalidField(where, "must be a service-account key (JSON)") from None
    if not isinstance(parsed, dict) or parsed.get("type") != "service_account":
        raise InvalidField(where, 'must be a service-account key ("type": "service_account")')
    for key in ("client_email", "private_key", "token_uri"):
        if not isinstance(parsed.get(key), str) or not parsed[key]:
            raise InvalidField(where, f"the service-account key has no {key}")
    email = parsed["client_email"]
    if public.get("serviceAccountEmail") not in (None, email):
        raise InvalidField(
            "credentials.keys.serviceAccountEmail", "differs from the key's client_email"
        )
    return email


def _spec(body: Any) -> Mapping[str, Any]:
    spec = body.get("credentials") if isinstance(body, Mapping) else None
    if not isinstance(spec, Mapping):
        raise InvalidField("credentials", "is required: {name, provider, keys}")
    return spec


def _description(spec: Mapping[str, Any]) -> str | None:
    value = spec.get("description")
    if value is not None and (not isinstance(value, str) or len(value) > 1000):
        raise InvalidField("credentials.description", "must be a string of at most 1000 characters")
    return value


def _taken(session: Session, scope: str, name: str, but: str | None = None) -> bool:
    query = select(Credential.id).where(Credential.scope == scope, Credential.name == name)
    if but is not None:
        query = query.where(Credential.id != but)
    return session.execute(query.limit(1)).first() is not None


def create(
    session: Session,
    principal: Principal,
    body: Any,
    sealer: Sealer,
    use_external_id: bool | None = None,
) -> Credential:
    _person(principal)
    if use_external_id:
        raise InvalidField("useExternalId", "not supported: external ids are not offered")
    spec = _spec(body)
    name = check_name(spec.get("name"))
    provider = spec.get("provider")
    if provider not in PROVIDERS:
        raise InvalidField("credentials.provider", f"must be one of {list(PROVIDERS)}")
    public, secret = _check_keys(provider, spec.get("keys") or {}, partial=False)
    scope = scope_of(principal)
    if _taken(session, scope, name):
        raise InvalidField("credentials.name", f"credentials named {name!r} already exist here")
    row = Credential(
        id=random_id(ID_LENGTH),
        scope=scope,
        owner_id=principal.user_id,
        workspace_id=principal.workspace_id,
        name=name,
        description=_description(spec),
        provider=provider,
        base_url=_base_url(provider, spec.get("baseUrl")),
        keys=public,
        sealed=sealer.seal(secret),
    )
    session.add(row)
    commit_unique(
        session, InvalidField("credentials.name", f"credentials named {name!r} already exist here")
    )
    return row


def list_credentials(
    session: Session, principal: Principal, platform_id: str | None = None
) -> list[Credential]:
    _person(principal)
    query = select(Credential).where(Credential.scope == scope_of(principal))
    if platform_id:
        provider = PLATFORM_PROVIDER.get(platform_id)
        if provider is None:
            known = sorted(PLATFORM_PROVIDER)
            raise InvalidField("platformId", f"no credentials for {platform_id!r}; known: {known}")
        query = query.where(Credential.provider == provider)
    return list(session.execute(query.order_by(Credential.name, Credential.id)).scalars())


def get(session: Session, principal: Principal, credentials_id: str) -> Credential:
    _person(principal)
    row = session.get(Credential, credentials_id)
    if row is None or row.scope != scope_of(principal):
        # Seqera's answer for credentials not found where the caller acts is a 403.
        raise Forbidden(f"credentialsId: no credentials {credentials_id!r} here")
    return row


def update(
    session: Session,
    principal: Principal,
    credentials_id: str,
    body: Any,
    sealer: Sealer,
    use_external_id: bool | None = None,
) -> None:
    """Seqera's update: the name, description, base URL and keys may change; secret
    fields left out keep their stored values; the provider stays."""
    if use_external_id:
        raise InvalidField("useExternalId", "not supported: external ids are not offered")
    row = get(session, principal, credentials_id)
    spec = _spec(body)
    provider = spec.get("provider", row.provider)
    if provider != row.provider:
        raise InvalidField("credentials.provider", f"cannot change (it is {row.provider!r})")
    if spec.get("name") is not None:
        name = check_name(spec["name"])
        if _taken(session, row.scope, name, but=row.id):
            raise InvalidField("credentials.name", f"credentials named {name!r} already exist here")
        row.name = name
    if "description" in spec:
        row.description = _description(spec)
    if "baseUrl" in spec:
        row.base_url = _base_url(provider, spec.get("baseUrl"))
    if spec.get("keys") is not None:
        public, secret = _check_keys(provider, spec["keys"], partial=True)
        if secret:
            try:
                stored = sealer.open(row.sealed)
            except CannotOpen:
                stored = {}
                missing = [k for k in SECRET_FIELDS[provider] if k not in secret]
                if provider in (AWS, GOOGLE) and missing:
                    raise BadRequest(
                        "credentials.keys: the stored secret cannot be opened with the "
                        "configured key; give every secret field again"
                    ) from None
            if provider == SSH and "privateKey" in secret:
                stored.pop("passphrase", None)  # a new key comes with its own passphrase
            merged = {**stored, **secret}
            if provider == SSH and "privateKey" in merged:
                _check_ssh_key(merged["privateKey"], merged.get("passphrase"))
            row.sealed = sealer.seal(merged)
        row.keys = {**row.keys, **public} if provider != AWS else public
    row.updated_at = utcnow()
    commit_unique(
        session, InvalidField("credentials.name", "credentials of that name already exist here")
    )


def users_of(session: Session, credentials_id: str) -> list[ComputeEnv]:
    return list(
        session.execute(
            select(ComputeEnv).where(
                ComputeEnv.credentials_id == credentials_id, ~ComputeEnv.deleted
            )
        ).scalars()
    )


def delete(session: Session, principal: Principal, credentials_id: str) -> list[ComputeEnv]:
    """Delete unless a compute environment still names them: then nothing is deleted and
    those compute environments are returned (the answer is a 409 listing them)."""
    row = get(session, principal, credentials_id)
    users = users_of(session, row.id)
    if users:
        return users
    session.delete(row)
    session.commit()
    return []


def validate_name(session: Session, principal: Principal, name: Any) -> None:
    _person(principal)
    if name is None:
        raise InvalidField("name", "is required")
    check_name(name, "name")
    if _taken(session, scope_of(principal), name):
        raise Conflict(f"name: credentials named {name!r} already exist here")


def public_keys(row: Credential) -> dict[str, Any]:
    """``keys`` as an answer shows them: the discriminator and the non-secret fields."""
    shown: dict[str, Any] = {"discriminator": row.provider, **(row.keys or {})}
    if row.provider == AWS:
        shown["mode"] = "keys"
    return shown


# --- what compute environments and workers use ----------------------------------------


def for_compute_env(
    session: Session, principal: Principal, credentials_id: Any, platform: str
) -> str | None:
    """The credentials a new compute environment names, checked: of the same place (the
    workspace, or the creator's personal workspace for a global one) and of the
    platform's provider."""
    if credentials_id is None:
        return None
    where = "computeEnv.credentialsId"
    if not isinstance(credentials_id, str):
        raise InvalidField(where, "must be a credentials id")
    row = session.get(Credential, credentials_id)
    if row is None or row.scope != scope_of(principal):
        raise InvalidField(where, f"no credentials {credentials_id!r} here")
    wanted = PLATFORM_PROVIDER.get(platform)
    if wanted is None or row.provider != wanted:
        takes = f"takes {wanted} credentials" if wanted else "takes no credentials"
        raise InvalidField(where, f"{platform} {takes}, not {row.provider} ones")
    return row.id


class CredentialsUnusable(Exception):
    """Named credentials that are gone, or that no configured key opens."""


def open_keys(session: Session, credentials_id: str, sealer: Sealer) -> OpenedKeys:
    row = session.get(Credential, credentials_id)
    if row is None:
        raise CredentialsUnusable(f"the credentials {credentials_id} no longer exist")
    try:
        secret = sealer.open(row.sealed)
    except CannotOpen as exc:
        raise CredentialsUnusable(f"the credentials {row.name!r} cannot be opened: {exc}") from None
    row.last_used_at = utcnow()
    return OpenedKeys(
        id=row.id,
        name=row.name,
        provider=row.provider,
        base_url=row.base_url,
        fields={**(row.keys or {}), **secret},
    )


def pipeline_host(pipeline: str) -> str | None:
    """The git host a pipeline is cloned from (``owner/repo`` is GitHub's), or None for
    a local script."""
    if pipeline.startswith("https://"):
        return (urlsplit(pipeline).hostname or "").lower() or None
    if re.fullmatch(r"[\w.-]+/[\w.-]+", pipeline):
        return GIT_HOSTS["github"]
    return None


def git_credentials_for(
    session: Session, scope: str, pipeline: str, sealer: Sealer
) -> OpenedKeys | None:
    """The git credentials of ``scope`` for the host ``pipeline`` is cloned from: the
    first by name whose base URL (or provider's public host) is that host."""
    host = pipeline_host(pipeline)
    if host is None:
        return None
    rows = session.execute(
        select(Credential)
        .where(Credential.scope == scope, Credential.provider.in_(GIT_PROVIDERS))
        .order_by(Credential.name)
    ).scalars()
    for row in rows:
        own = urlsplit(row.base_url).hostname if row.base_url else GIT_HOSTS[row.provider]
        if (own or "").lower() == host:
            return open_keys(session, row.id, sealer)
    return None


def scm_file_text(keys: OpenedKeys, pipeline: str) -> str:
    """Nextflow's SCM config (the file ``NXF_SCM_FILE`` names) giving ``keys`` for the
    pipeline's host. Values are written as Groovy single-quoted strings."""
    user = keys.get("username") or ("oauth2" if keys.provider == "gitlab" else keys.provider)
    secret = keys.get("password") or keys.get("token") or ""
    if keys.base_url is None and keys.provider in ("github", "gitlab", "bitbucket"):
        lines = ["providers {", f"  {keys.provider} {{"]
    else:
        server = keys.base_url or f"https://{GIT_HOSTS[keys.provider]}"
        lines = ["providers {", "  gateway {"]
        lines += [f"    server = {_groovy(server)}", f"    platform = {_groovy(keys.provider)}"]
    lines += [f"    user = {_groovy(user)}", f"    password = {_groovy(secret)}", "  }", "}", ""]
    return "\n".join(lines)


def _groovy(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"
