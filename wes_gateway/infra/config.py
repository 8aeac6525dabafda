"""Every setting of the service, read from the environment in this one place.

Each setting is one field: its name, type and default. The environment variable is the
field name in upper case with the ``WES_GATEWAY_`` prefix (``data_dir`` is
``WES_GATEWAY_DATA_DIR``). Tests build a ``Settings`` object directly instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024
# Where the two APIs live (the public interface: clients, the dashboard, the head jobs'
# -with-tower URL and the error shapes all follow these).
WES_BASE_PATH = "/ga4gh/wes/v1"
TOWER_BASE_PATH = "/api"

SERVICE_PREFIX = "WES_GATEWAY_"
# A variable name, or a prefix of one followed by * (at least one character before it).
_PASSED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\*?")
# prometheus_client's own variable: a folder where every process of a host writes its
# samples (read before prometheus_client is first imported, so set early).
METRICS_FOLDER_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The shortest takeover window: its half, the create call's budget, is then one second.
MIN_SUBMIT_STALE_AFTER = 2.0
CREATE_CONNECT_TIMEOUT = 5.0  # seconds, at most, to connect for the create call


# Dockstore serves TRS v2 under /api (its trs:// URIs name the host alone).
DOCKSTORE_TRS = "https://dockstore.org/api/ga4gh/trs/v2"
# A host[:port] of a TRS registry: a DNS name or an IPv4 address, an optional port.
_TRS_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:[0-9]{1,5})?")
_TRS_PATH = re.compile(r"(/[A-Za-z0-9_.~%+-]+)*/?")


def trs_registries(value: str) -> dict[str, str]:
    """``WES_GATEWAY_TRS_HOSTS`` read: host[:port] (lower case) -> TRS v2 base URL, no
    trailing slash. Refuses an entry that is neither a bare host[:port] nor an http(s) URL
    of one, and a host[:port] given twice."""
    registries: dict[str, str] = {}
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        scheme, sep, rest = entry.partition("://")
        if not sep:
            if "/" in entry:
                raise ValueError(
                    f"{entry!r}: give a TRS base URL with its scheme, or a host[:port]"
                )
            scheme, rest = "https", entry + "/ga4gh/trs/v2"
        host, slash, path = rest.partition("/")
        if scheme.lower() not in ("http", "https") or not _TRS_HOST.fullmatch(host):
            raise ValueError(f"{entry!r} is neither a host[:port] nor an http(s) TRS base URL")
        if not _TRS_PATH.fullmatch(slash + path) or ".." in path.split("/"):
            raise ValueError(f"{entry!r}: the path of a TRS base URL is plain text")
        key = host.lower()
        if key in registries:
            raise ValueError(f"{host!r} is given twice")
        registries[key] = f"{scheme.lower()}://{key}{(slash + path).rstrip('/')}"
    return registries


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=SERVICE_PREFIX, extra="ignore")

    data_dir: Path = Field(
        default=Path("wes-gateway-data"),
        description="Database, broker files and run folders of the embedded default.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; SQLite in the data folder when unset."
    )

    @field_validator("database_url", mode="after")
    @classmethod
    def _installed_driver(cls, value: str | None) -> str | None:
        """``postgresql://`` and ``postgres://`` (what compose files and platforms' own
        ``DATABASE_URL`` carry) mean the PostgreSQL driver this package installs."""
        if value is None:
            return None
        scheme, sep, rest = value.partition("://")
        if sep and scheme in ("postgres", "postgresql"):
            if importlib.util.find_spec("psycopg") is None:
                raise ValueError("PostgreSQL needs its driver: pip install 'wes-gateway[postgres]'")
            return f"postgresql+psycopg://{rest}"
        return value

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Fixed at start: a relative folder must not change meaning with the working
        # directory of whatever later reads a path under it.
        return value.resolve()

    db_pool_size: int = Field(
        default=10, ge=1, description="Connections each process keeps open (PostgreSQL)."
    )
    db_max_overflow: int = Field(
        default=20, ge=0, description="Extra connections each process may open at peaks."
    )
    db_pool_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for a free connection, then a 503."
    )
    broker_url: str | None = Field(
        default=None, description="Celery broker URL; a serverless broker in the data folder."
    )
    public_url: str | None = Field(
        default=None,
        description="The URL clients and head jobs reach the service at; taken from each "
        "request when unset.",
    )
    nextflow: str = Field(default="nextflow", description="The nextflow executable.")
    head_job_env: str = Field(
        default="",
        description="Comma-separated names of worker variables a local head job also gets "
        "(a trailing * takes every variable with that prefix), besides its allow-list.",
    )
    local_scripts: bool = Field(
        default=False,
        description="Run a launch's pre- and post-run scripts on the local platform (user "
        "shell on the workers' machine: off by default; cloud head jobs always run them).",
    )
    nextflow_version: str = Field(
        default="25.04.0",
        description="Advertised when the installed Nextflow's version cannot be read.",
    )
    ssh_known_hosts: Path | None = Field(
        default=None,
        description="The known_hosts file the workers check Slurm login nodes' host keys "
        "against (an unknown or changed key is refused); the worker user's "
        "~/.ssh/known_hosts when unset.",
    )
    slurm_local: bool = Field(
        default=False,
        description="Run the Slurm commands of a compute environment whose hostName is "
        "localhost on the workers' own machine, without SSH.",
    )
    ssh_timeout: float = Field(
        default=20.0, gt=0, description="Seconds to connect to a Slurm login node over SSH."
    )
    trs_hosts: str = Field(
        default=DOCKSTORE_TRS,
        description="Comma-separated GA4GH TRS v2 registries a workflow_url may name "
        "(trs://<host>/<tool id>/<version>, or a Dockstore #workflow/ id, resolved through "
        "the first). Each is a TRS base URL (http or https, with its path) or a bare "
        "host[:port], meaning https://<host[:port]>/ga4gh/trs/v2; a trs:// URI names an "
        "entry by its host[:port]. Empty: no TRS workflows.",
    )
    trs_timeout: float = Field(
        default=5.0, gt=0, le=60, description="Seconds a TRS registry has for each answer."
    )
    trs_cache_ttl: float = Field(
        default=600.0,
        ge=0,
        description="Seconds a TRS resolution (tool version to git URL and revision) is "
        "reused; 0: every submission asks the registry.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Signs page tokens; generated once into the data folder when unset. Set "
        "the same value on every API process of a deployment.",
    )
    credentials_key: str | None = Field(
        default=None,
        description="Seals stored credentials and pipeline secrets (any long random text; "
        "several, comma-separated, while rotating: the first seals, each opens). Derived "
        "from the secret key when unset.",
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="An OpenID provider's issuer URL: single sign-on for the dashboard, and "
        "its bearer JWTs accepted on both APIs (discovery at "
        "<issuer>/.well-known/openid-configuration).",
    )
    oidc_client_id: str | None = Field(
        default=None, description="The dashboard's client id at the OpenID provider."
    )
    oidc_client_secret: str | None = Field(
        default=None, description="The dashboard's client secret at the OpenID provider."
    )
    oidc_audience: str | None = Field(
        default=None,
        description="Comma-separated audiences accepted on bearer JWTs (default the client id).",
    )
    oidc_username_claim: str = Field(
        default="preferred_username",
        description="The claim that names the user (else `sub`).",
    )
    oidc_admin_group: str | None = Field(
        default=None,
        description="A value of the `groups` claim that makes a service administrator "
        "(and leaving it ends what it gave).",
    )
    oidc_link_existing_users: bool = Field(
        default=False,
        description="Let a provider account's first sign-in take over the existing user of "
        "the same name that no provider account holds yet (users made before single "
        "sign-on); off, such an account gets a name of its own.",
    )
    max_request_mb: int = Field(default=256, description="Largest accepted request body.")
    max_field_kb: int = Field(
        default=1024, description="Largest accepted non-file form part (workflow_params…)."
    )
    max_attachments: int = Field(default=1000, description="Most attachments in one run.")
    max_outputs: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Most files a run's WES outputs list (of its params.outdir); a run "
        "that published more shows the first ones in path order, flagged outputs_truncated.",
    )
    queue: str = Field(
        default="wes-gateway",
        description="The broker queue of this deployment (several may share one broker).",
    )
    embedded_worker: bool | None = Field(
        default=None,
        description="serve starts a worker and the scheduler as children; by default only "
        "on the embedded broker (no WES_GATEWAY_BROKER_URL).",
    )
    poll_interval: float = Field(default=2.0, description="Seconds between polls of head jobs.")
    sweep_interval: float = Field(default=15.0, description="Seconds between sweeps.")
    requeue_after: float = Field(
        default=30.0, description="A QUEUED run no worker took after this long is re-sent."
    )
    submit_stale_after: float = Field(
        default=60.0,
        description="An interrupted submit (INITIALIZING with no job) is taken over after "
        "this; a submit's call that creates a cloud job is held to half of it.",
    )
    trace_timeout: float = Field(
        default=190.0,
        description="A traced run not polled by us that is silent this long becomes UNKNOWN.",
    )
    cancel_grace: float = Field(
        default=30.0, description="Seconds a cancelled head job has to stop before SIGKILL."
    )
    job_end_grace: float = Field(
        default=300.0,
        ge=0,
        description="Seconds a head job may keep running after its run ended by its trace "
        "before the workers stop it.",
    )
    state_counts_max_age: float = Field(
        default=2.0,
        description="Seconds a count of runs by state (service-info, /metrics) is reused.",
    )
    events_streams: int = Field(
        default=500,
        ge=0,
        description="Most live-update streams (server-sent events) one API process keeps "
        "open; one more is a 429.",
    )
    events_streams_per_user: int = Field(
        default=20,
        ge=0,
        description="Most live-update streams one user keeps open on one API process; one "
        "more is a 429.",
    )
    events_stream_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A live-update stream ends after this long and the client reconnects "
        "(checking its token and roles again, resuming from its last event id).",
    )
    events_poll_interval: float = Field(
        default=0.5,
        gt=0,
        description="Seconds between an API process's reads of new run changes on SQLite "
        "(one read for all its streams; PostgreSQL notifies instead).",
    )
    events_keepalive: float = Field(
        default=15.0, gt=0, description="Seconds between keep-alive comments on an idle stream."
    )
    events_retention: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds run changes are kept for streams that resume; a stream resuming "
        "from an older event is told to read everything again.",
    )
    validate_responses: bool = Field(
        default=False, description="Check every response against our OpenAPI files."
    )
    auth_instructions_url: str | None = Field(
        default=None,
        description="Where service-info sends clients to learn how to get a token; our own "
        "/auth page when unset.",
    )
    organization_name: str = Field(default="wes-gateway")
    organization_url: str | None = Field(
        default=None, description="Shown in service-info; the public URL when unset."
    )
    environment: str | None = Field(
        default=None, description="Shown in service-info: prod, test, dev or staging."
    )

    @field_validator("submit_stale_after", mode="after")
    @classmethod
    def _room_for_a_create_call(cls, value: float) -> float:
        """A submit that is slow, not dead, must never be taken over: its create call is
        held to ``create_budget`` (half of this), which must leave that call some time."""
        if value < MIN_SUBMIT_STALE_AFTER:
            raise ValueError(
                f"must be at least {MIN_SUBMIT_STALE_AFTER:g} seconds: a submit's create "
                "call is given half of it, and takeovers wait for the whole"
            )
        return value

    @property
    def create_budget(self) -> float:
        """Seconds the one call that creates a cloud head job may take, connecting and
        answering, without retries: half of ``submit_stale_after``, so no other worker can
        take the run over (and create a second job) while that call is under way."""
        return self.submit_stale_after / 2

    @property
    def create_timeouts(self) -> tuple[float, float]:
        """(connect, read) timeouts of the create call; their sum is ``create_budget``."""
        connect = min(CREATE_CONNECT_TIMEOUT, self.create_budget / 4)
        return connect, self.create_budget - connect

    @field_validator("trs_hosts", mode="after")
    @classmethod
    def _trs_hosts(cls, value: str) -> str:
        trs_registries(value)
        return value

    @cached_property
    def trs_registries(self) -> dict[str, str]:
        """Each allowed TRS registry's host[:port] (as a trs:// URI names it), with its base
        URL, in the order given."""
        return trs_registries(self.trs_hosts)

    @field_validator("head_job_env", mode="after")
    @classmethod
    def _variable_names(cls, value: str) -> str:
        for name in (part.strip() for part in value.split(",")):
            if name and not _PASSED_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a variable name (or a prefix ending in *)")
            if name.startswith(SERVICE_PREFIX):
                raise ValueError(f"{name!r}: the service's own settings never reach a pipeline")
        return value

    @property
    def head_job_env_names(self) -> tuple[str, ...]:
        return tuple(name for name in (p.strip() for p in self.head_job_env.split(",")) if name)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'wes-gateway.db').resolve()}"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    def run_dir(self, run_id: str) -> Path:
        """A run's folder: its launch directory, console, logs and attachments."""
        return self.runs_dir / run_id

    @property
    def db_pool(self) -> dict[str, float]:
        """The connection pool of a server database, as SQLAlchemy names its sizes."""
        return {
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_max_overflow,
            "pool_timeout": self.db_pool_timeout,
        }

    @property
    def runs_embedded_worker(self) -> bool:
        return self.embedded_worker if self.embedded_worker is not None else not self.broker_url

    def ensure_data_dir(self) -> None:
        self.runs_dir.mkdir(parents=True, exist_ok=True)

    @cached_property
    def signing_key(self) -> bytes:
        """The key behind page tokens, made once per data folder when none is configured."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # Written aside and linked into place, so a concurrent reader never sees a
            # half-written key and the first process to link wins.
            draft = path.with_name(f"secret_key.{secrets.token_hex(4)}")
            draft.write_text(secrets.token_hex(32), encoding="ascii")
            draft.chmod(0o600)
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return path.read_text(encoding="ascii").strip().encode()

    @property
    def credentials_keys(self) -> tuple[bytes, ...]:
        """The key material that seals credentials and pipeline secrets, newest first:
        ``credentials_key`` (comma-separated while rotating), else the signing key."""
        named = [part.strip() for part in (self.credentials_key or "").split(",")]
        named = [part for part in named if part]
        return tuple(part.encode() for part in named) or (self.signing_key,)

    @property
    def oidc_audiences(self) -> tuple[str, ...]:
        """The audiences a bearer JWT may carry: the configured list, else the client id."""
        named = [a.strip() for a in (self.oidc_audience or "").split(",") if a.strip()]
        if not named and self.oidc_client_id:
            named = [self.oidc_client_id]
        return tuple(named)

    @property
    def max_request_bytes(self) -> int:
        return self.max_request_mb * MIB

    @property
    def max_field_bytes(self) -> int:
        return self.max_field_kb * 1024
