"""Compute environments: where head jobs run, and the configs each platform takes,
checked on create. Global ones (no workspace) are offered in every workspace and managed
by service administrators; a workspace's own are managed by its admins and offered there
only.

A compute environment names a platform and its config. Every user may list them and
launch on them; only administrators create, delete or make one primary, because a
compute environment spends the workers' cloud credentials. The primary one takes runs
that name none; the built-in ``local`` one (the workers' own machine) is primary until
another is chosen.

Config field names are Seqera's (``AwsBatchConfig``, ``GoogleBatchConfig``,
``SlurmComputeConfig``) plus two of ours on both clouds: ``headJobImage`` (the head job's
container) and ``endpointUrl`` (a private or stand-in API endpoint), and one on Slurm:
``sshKeyFile``, a private key file of the workers' hosts to sign in with (service
administrators only), for clusters reached without named ``ssh`` credentials.
A stored config has passed these checks, so the workers can rely on it. Seqera fields
for features this service does not offer (Wave, Fusion, Forge, …) are accepted when off or
empty, and refused when turned on, rather than silently ignored.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from wes_gateway.domain import credentials
from wes_gateway.domain.errors import BadRequest, Conflict, Forbidden, InvalidField, NotFound
from wes_gateway.domain.ids import random_id
from wes_gateway.domain.models import ComputeEnv
from wes_gateway.domain.tenancy_fields import commit_unique
from wes_gateway.domain.tokens import Principal
from wes_gateway.infra.db import utcnow

BUILTIN_ID = "local"
ID_LENGTH = 22  # Seqera's compute environment ids are 22 base62 characters
STATUSES = ("CREATING", "AVAILABLE", "DISABLED", "DELETING", "ERRORED", "INVALID", "DELETED")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def _admin(principal: Principal, action: str) -> None:
    """Global compute environments (the personal context's) are the service
    administrators'; in a workspace, ``tenancy.acting`` has checked the caller's role."""
    if principal.workspace_id is None and not principal.acts_as_admin:
        raise Forbidden(f"only administrators may {action} compute environments")


def _in_scope(query, principal: Principal):
    """Compute environments offered where the principal acts: the global ones, and in a
    workspace that workspace's own."""
    if principal.workspace_id is None:
        return query.where(ComputeEnv.workspace_id.is_(None))
    return query.where(
        (ComputeEnv.workspace_id == principal.workspace_id) | ComputeEnv.workspace_id.is_(None)
    )


def create(session: Session, principal: Principal, body: Mapping[str, Any]) -> ComputeEnv:
    _admin(principal, "create")
    spec = body.get("computeEnv")
    if not isinstance(spec, Mapping):
        raise InvalidField("computeEnv", "is required: {name, platform, config}")
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidField("computeEnv.name", "must be 1-100 letters, digits, '_', '.' or '-'")
    platform = check_platform(spec.get("platform"))
    # Named credentials are used instead of the workers' SDK default chain.
    credentials_id = credentials.for_compute_env(
        session, principal, spec.get("credentialsId"), platform
    )
    config = check_config(platform, spec.get("config"))
    if config.get("sshKeyFile") and not principal.acts_as_admin:
        raise Forbidden(
            "computeEnv.config.sshKeyFile: only service administrators may name a key file "
            "of the workers' hosts"
        )
    if config.get("sshKeyFile") and credentials_id is not None:
        raise InvalidField(
            "computeEnv.credentialsId",
            "name either ssh credentials or config.sshKeyFile, not both",
        )
    description = spec.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 2000):
        raise InvalidField("computeEnv.description", "must be a string of at most 2000 characters")
    taken = _in_scope(
        select(ComputeEnv.id).where(ComputeEnv.name == name, ~ComputeEnv.deleted), principal
    )
    if session.execute(taken.limit(1)).first() is not None:
        raise Conflict(f"a compute environment named {name!r} already exists")
    env = ComputeEnv(
        id=random_id(ID_LENGTH),
        owner_id=principal.user_id,
        workspace_id=principal.workspace_id,
        name=name,
        description=description,
        platform=platform,
        config=config,
        credentials_id=credentials_id,
        # A cloud one is tried by a worker first (dispatch.check_compute_env).
        status="AVAILABLE" if platform == LOCAL else "CREATING",
        primary=False,
    )
    session.add(env)
    commit_unique(session, f"a compute environment named {name!r}")
    return env


def list_envs(
    session: Session, principal: Principal, status: str | None = None
) -> list[ComputeEnv]:
    query = _in_scope(select(ComputeEnv).where(~ComputeEnv.deleted), principal)
    if status is not None:
        wanted = [part.strip().upper() for part in status.split(",") if part.strip()]
        unknown = set(wanted) - set(STATUSES)
        if unknown:
            raise InvalidField("status", f"unknown status {sorted(unknown)[0]}; one of {STATUSES}")
        query = query.where(ComputeEnv.status.in_(wanted))
    return list(session.execute(query.order_by(ComputeEnv.created_at, ComputeEnv.id)).scalars())


def get(session: Session, env_id: str, principal: Principal | None = None) -> ComputeEnv:
    """The compute environment, if offered where ``principal`` acts (given one)."""
    env = session.get(ComputeEnv, env_id)
    offered = principal is None or env is None or env.workspace_id is None
    if env is None or env.deleted or not (offered or env.workspace_id == principal.workspace_id):
        raise NotFound(f"compute environment {env_id!r} not found")
    return env


def of_run(session: Session, run: Any) -> ComputeEnv:
    """The compute environment a run was launched on: its own, or (a run that names
    none) the built-in local one, as it is now, deleted or not."""
    if run.compute_env is not None:
        return run.compute_env
    env = session.get(ComputeEnv, BUILTIN_ID)
    if env is None:  # a database whose built-in row was removed by hand
        env = ComputeEnv(id=BUILTIN_ID, name="local", platform=LOCAL, config={})
        env.status, env.primary, env.deleted = "AVAILABLE", False, False
    return env


def _managed(session: Session, principal: Principal, env_id: str, action: str) -> ComputeEnv:
    env = get(session, env_id, principal)
    if env.workspace_id != principal.workspace_id:
        raise Forbidden(f"only administrators may {action} global compute environments")
    return env


def delete(session: Session, principal: Principal, env_id: str) -> None:
    """Retire a compute environment. Runs still on it keep being watched (the row stays,
    marked deleted); it takes no new runs."""
    _admin(principal, "delete")
    env = _managed(session, principal, env_id, "delete")
    env.deleted = True
    env.primary = False
    env.status = "DELETED"
    env.updated_at = utcnow()
    session.commit()


def make_primary(session: Session, principal: Principal, env_id: str) -> None:
    _admin(principal, "choose the primary of")
    env = _managed(session, principal, env_id, "choose the primary of")
    same_place = (
        ComputeEnv.workspace_id.is_(None)
        if env.workspace_id is None
        else ComputeEnv.workspace_id == env.workspace_id
    )
    session.execute(
        update(ComputeEnv).where(ComputeEnv.id != env.id, same_place).values(primary=False)
    )
    env.primary = True
    env.updated_at = utcnow()
    session.commit()


def primary_of(session: Session, workspace_id: int | None) -> str | None:
    """The primary compute environment where ``workspace_id`` (None: personal) acts: the
    workspace's own, else the global one. It is the one shown as primary there: a
    workspace with a primary of its own shows the global primary as not primary."""
    primaries = session.execute(
        select(ComputeEnv.id, ComputeEnv.workspace_id).where(
            ComputeEnv.primary,
            ~ComputeEnv.deleted,
            (ComputeEnv.workspace_id == workspace_id) | ComputeEnv.workspace_id.is_(None),
        )
    ).all()
    ordered = sorted(primaries, key=lambda row: row.workspace_id is None)
    return ordered[0].id if ordered else None


def for_new_run(
    session: Session, env_id: str | None, field: str, workspace_id: int | None = None
) -> str | None:
    """The compute environment a new run of ``workspace_id`` (None: personal) goes to:
    the one named (``field`` says where), which must be offered there, else the
    workspace's primary, else the global primary; None means the workers' own machine."""
    if env_id is None:
        return primary_of(session, workspace_id)
    env = session.get(ComputeEnv, env_id)
    if env is None or env.deleted or env.workspace_id not in (None, workspace_id):
        raise InvalidField(field, f"no compute environment {env_id!r}")
    if env.status not in ("AVAILABLE", "CREATING"):
        why = f": {env.message}" if env.message else ""
        raise BadRequest(f"{field}: compute environment {env_id!r} is {env.status}{why}")
    return env.id


LOCAL = "local-platform"
AWS_BATCH = "aws-batch"
GOOGLE_BATCH = "google-batch"
SLURM = "slurm-platform"
PLATFORMS = (LOCAL, AWS_BATCH, GOOGLE_BATCH, SLURM)
PLATFORM_NAMES = {
    LOCAL: "Local",
    AWS_BATCH: "Amazon Batch",
    GOOGLE_BATCH: "Google Batch",
    SLURM: "Slurm Workload Manager",
}
DEFAULT_SSH_PORT = 22


DEFAULT_HEAD_IMAGE = "nextflow/nextflow:24.10.4"
DEFAULT_HEAD_CPUS = 1
DEFAULT_HEAD_MEMORY_MB = 4096
DEFAULT_AWS_LOG_GROUP = "/aws/batch/job"

# Names of environment variables whose values are never shown back.
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|_KEY$|^KEY", re.I)
MASK = "********"

Check = Callable[[str, Any], Any]


def _text(max_len: int = 1000, pattern: str | None = None, hint: str = "") -> Check:
    compiled = re.compile(pattern) if pattern else None

    def check(field: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise InvalidField(field, "must be a non-empty string")
        if len(value) > max_len:
            raise InvalidField(field, f"must be at most {max_len} characters")
        if compiled and not compiled.fullmatch(value):
            raise InvalidField(field, hint or f"must match {pattern}")
        return value

    return check


def _integer(low: int, high: int) -> Check:
    def check(field: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidField(field, f"must be an integer from {low} to {high}")
        return value

    return check


def _boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidField(field, "must be true or false")
    return value


def _url(field: str, value: Any) -> str:
    _text(2000)(field, value)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidField(field, "must be an http(s) URL such as https://batch.example.com")
    return value.rstrip("/")


def _bucket_path(scheme: str) -> Check:
    def check(field: str, value: Any) -> str:
        _text(1000)(field, value)
        if not re.fullmatch(rf"{scheme}://[a-z0-9][a-z0-9._-]{{1,61}}[a-z0-9](/\S*)?", value):
            raise InvalidField(
                field, f"must be a {scheme}:// bucket path, e.g. {scheme}://bucket/work"
            )
        return value.rstrip("/")

    return check


def _script(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidField(field, "must be a string")
    if len(value.encode()) > 1024:
        raise InvalidField(field, "must be at most 1 KB")
    return value


def _config_text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidField(field, "must be a string")
    if len(value) > 64_000:
        raise InvalidField(field, "must be at most 64,000 characters")
    return value


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _absolute_path(field: str, value: Any) -> str:
    _text(1000)(field, value)
    if not re.fullmatch(r"/[\w.+@%=,:~/-]*", value) or "/../" in value + "/":
        raise InvalidField(field, "must be an absolute path of letters, digits and ._-+@%=,:~/")
    return value.rstrip("/") or "/"


def _sbatch_options(field: str, value: Any) -> str:
    """Options given to sbatch as they are (``--mem=4G --time=2:00:00``): each one an
    option, split as a shell splits them; no newline (it would end a directive)."""
    if not isinstance(value, str) or len(value) > 1000 or "\n" in value or "\r" in value:
        raise InvalidField(field, "must be one line of at most 1000 characters")
    try:
        options = shlex.split(value)
    except ValueError as exc:
        raise InvalidField(field, f"cannot be split into options: {exc}") from None
    for option in options:
        if not option.startswith("-"):
            raise InvalidField(field, f"{option!r} is not an option (options start with -)")
        if option.split("=", 1)[0] in _SBATCH_OWN:
            raise InvalidField(field, f"{option} is set by the service")
    return value


# What the service sets on a head job itself.
_SBATCH_OWN = {
    "-J",
    "--job-name",
    "-o",
    "--output",
    "-e",
    "--error",
    "--parsable",
    "-D",
    "--chdir",
    "--wrap",
    "-p",
    "--partition",
}


def _environment(field: str, value: Any) -> list[dict[str, Any]]:
    """Seqera's ``ConfigEnvVariable`` list: ``{name, value, head, compute}``."""
    if not isinstance(value, list) or len(value) > 100:
        raise InvalidField(field, "must be a list of at most 100 {name, value, head, compute}")
    seen: set[str] = set()
    cleaned = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidField(where, "must be an object {name, value, head, compute}")
        unknown = set(item) - {"name", "value", "head", "compute"}
        if unknown:
            raise InvalidField(f"{where}.{sorted(unknown)[0]}", "is not a field of a variable")
        name = item.get("name")
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise InvalidField(f"{where}.name", "must be a variable name ([A-Za-z_][A-Za-z0-9_]*)")
        if name in seen:
            raise InvalidField(f"{where}.name", f"{name} is listed twice")
        seen.add(name)
        text = item.get("value", "")
        if not isinstance(text, str) or len(text) > 4096:
            raise InvalidField(f"{where}.value", "must be a string of at most 4096 characters")
        head = item.get("head", True)
        compute = item.get("compute", False)
        if not isinstance(head, bool) or not isinstance(compute, bool):
            raise InvalidField(where, "head and compute must be true or false")
        cleaned.append({"name": name, "value": text, "head": head, "compute": compute})
    return cleaned


def _labels(field: str, value: Any) -> dict[str, str]:
    """Google resource labels: lowercase keys and values of at most 63 characters."""
    if not isinstance(value, Mapping) or len(value) > 64:
        raise InvalidField(field, "must be an object of at most 64 labels")
    pattern = re.compile(r"[a-z][a-z0-9_-]{0,62}")
    for key, text in value.items():
        if not pattern.fullmatch(str(key)):
            raise InvalidField(f"{field}.{key}", "label keys are lowercase, start with a letter")
        if not isinstance(text, str) or not re.fullmatch(r"[a-z0-9_-]{0,63}", text):
            raise InvalidField(f"{field}.{key}", "label values are lowercase, at most 63 long")
    return dict(value)


_ROLE_ARN = r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}"
_QUEUE = (
    r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}"
    r"|arn:aws[a-z-]*:batch:[a-z0-9-]+:\d{12}:job-queue/[A-Za-z0-9_-]{1,128}"
)

_COMMON: dict[str, Check] = {
    "headJobImage": _text(500, r"[\w.\-/:@]+", "must be a container image reference"),
    "endpointUrl": _url,
    "headJobCpus": _integer(1, 96),
    "headJobMemoryMb": _integer(1000, 786_432),
    "environment": _environment,
    "nextflowConfig": _config_text,
    "preRunScript": _script,
    "postRunScript": _script,
}

FIELDS: dict[str, dict[str, Check]] = {
    LOCAL: {},
    AWS_BATCH: {
        **_COMMON,
        "region": _text(
            30, r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", "must be an AWS region, e.g. eu-west-1"
        ),
        "headQueue": _text(300, _QUEUE, "must be a job queue name or ARN"),
        "computeQueue": _text(300, _QUEUE, "must be a job queue name or ARN"),
        "workDir": _bucket_path("s3"),
        "headJobRole": _text(600, _ROLE_ARN, "must be an IAM role ARN"),
        "computeJobRole": _text(600, _ROLE_ARN, "must be an IAM role ARN"),
        "executionRole": _text(600, _ROLE_ARN, "must be an IAM role ARN"),
        "logGroup": _text(512, r"[\w\-/.#]+", "must be a CloudWatch Logs group name"),
        "headJobDefinition": _text(300, r"[A-Za-z0-9][\w:-]{0,255}", "must be a job definition"),
        "cliPath": _text(300, r"/[\w./-]+", "must be an absolute path"),
    },
    GOOGLE_BATCH: {
        **_COMMON,
        "projectId": _text(
            30, r"[a-z][a-z0-9-]{4,28}[a-z0-9]", "must be a Google Cloud project id"
        ),
        "location": _text(40, r"[a-z]+-[a-z]+\d+", "must be a Batch location, e.g. europe-west2"),
        "workDir": _bucket_path("gs"),
        "serviceAccount": _text(
            200,
            r"[a-z0-9-]+@[a-z0-9.-]+\.iam\.gserviceaccount\.com|[\w.-]+@[\w.-]+",
            "must be a service account email",
        ),
        "network": _text(300, r"[\w/.-]+", "must be a network name or path"),
        "subnetwork": _text(300, r"[\w/.-]+", "must be a subnetwork name or path"),
        "bootDiskSizeGb": _integer(10, 65_536),
        "spot": _boolean,
        "usePrivateAddress": _boolean,
        "labels": _labels,
        "machineType": _text(100, r"[a-z0-9-]+", "must be a machine type, e.g. e2-standard-4"),
    },
}

FIELDS[SLURM] = {
    "hostName": _text(
        253,
        r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*|\[?[0-9a-fA-F:.]+\]?",
        "must be a host name or address",
    ),
    "port": _integer(1, 65535),
    "userName": _text(32, r"[a-z_][a-z0-9_.-]*\$?", "must be a user name of the cluster"),
    "workDir": _absolute_path,
    "launchDir": _absolute_path,
    "headQueue": _text(64, r"[A-Za-z0-9][\w.-]*", "must be a Slurm partition name"),
    "computeQueue": _text(64, r"[A-Za-z0-9][\w.-]*", "must be a Slurm partition name"),
    "headJobOptions": _sbatch_options,
    "propagateHeadJobOptions": _boolean,
    "maxQueueSize": _integer(1, 100_000),
    "nextflowConfig": _config_text,
    "environment": _environment,
    "preRunScript": _script,
    "postRunScript": _script,
    # Ours: a key file of the workers' hosts, where no ssh credentials are named.
    "sshKeyFile": _absolute_path,
}

REQUIRED: dict[str, tuple[str, ...]] = {
    LOCAL: (),
    AWS_BATCH: ("region", "headQueue", "workDir"),
    GOOGLE_BATCH: ("projectId", "location", "workDir"),
    SLURM: ("hostName", "userName", "workDir"),
}

# Seqera features not offered here: accepted while off, refused when turned on.
_NOT_OFFERED = {
    "waveEnabled",
    "fusion2Enabled",
    "fusionSnapshots",
    "nvnmeStorageEnabled",
    "forge",
    "forgedResources",
    "deletedResources",
    "storageType",
    "lustreId",
    "dragenQueue",
    "dragenInstanceType",
    "volumes",
    "headJobInstanceTemplate",
    "computeJobsInstanceTemplate",
    "computeJobsMachineType",
    "networkTags",
    "cpuPlatform",
    "bootDiskImage",
    "nfsTarget",
    "nfsMount",
    "sshDaemon",
    "sshImage",
    "copyImage",
    "debugMode",
}


def check_platform(platform: Any) -> str:
    if platform not in PLATFORMS:
        raise InvalidField("computeEnv.platform", f"must be one of {list(PLATFORMS)}")
    return platform


def check_config(platform: str, config: Any) -> dict[str, Any]:
    """The config to store, or an InvalidField naming the first field that is wrong."""
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise InvalidField("computeEnv.config", "must be an object")
    fields = FIELDS[platform]
    cleaned: dict[str, Any] = {}
    for key, value in config.items():
        where = f"computeEnv.config.{key}"
        if key == "discriminator":
            if value not in (None, platform):
                raise InvalidField(where, f"must be {platform!r}, the platform")
            continue
        if value is None or (key in _NOT_OFFERED and not value):
            continue
        if key in _NOT_OFFERED:
            raise InvalidField(where, "is not offered by this service")
        if key not in fields:
            known = sorted(fields) or "none"
            raise InvalidField(where, f"is not a {platform} setting; known: {known}")
        cleaned[key] = fields[key](where, value)
    for key in REQUIRED[platform]:
        if key not in cleaned:
            raise InvalidField(f"computeEnv.config.{key}", f"is required for {platform}")
    return cleaned


# Settings that configure how a run executes (shell around it, Nextflow config, the head
# job's environment): administrators read them; everyone else sees whether they are set.
EXECUTION_FIELDS = ("nextflowConfig", "preRunScript", "postRunScript", "sshKeyFile")


def _masked(value: str) -> str:
    return MASK if value else value


def shown(platform: str, config: Mapping[str, Any], *, admin: bool) -> dict[str, Any]:
    """The config as the API shows it: defaults filled in, secret values masked, and for
    anyone but an ``admin`` the execution settings masked too (strings stay strings, so
    the shape is Seqera's either way)."""
    out: dict[str, Any] = {"discriminator": platform, **config}
    if platform in (AWS_BATCH, GOOGLE_BATCH):
        out.setdefault("headJobImage", DEFAULT_HEAD_IMAGE)
        out.setdefault("headJobCpus", DEFAULT_HEAD_CPUS)
        out.setdefault("headJobMemoryMb", DEFAULT_HEAD_MEMORY_MB)
    if platform == AWS_BATCH:
        out.setdefault("logGroup", DEFAULT_AWS_LOG_GROUP)
    if platform == SLURM:
        out.setdefault("port", DEFAULT_SSH_PORT)
        out.setdefault("launchDir", out["workDir"])
    if not admin:
        for key in EXECUTION_FIELDS:
            if key in out:
                out[key] = _masked(out[key])
    if "environment" in out:
        out["environment"] = [_shown_variable(item, admin) for item in out["environment"]]
    return out


def _shown_variable(item: Mapping[str, Any], admin: bool) -> dict[str, Any]:
    """A secret-named variable's value is shown to no one; the others' to admins."""
    if _SECRET_NAME.search(item["name"]):
        return {**item, "value": MASK}
    return dict(item) if admin else {**item, "value": _masked(item["value"])}
