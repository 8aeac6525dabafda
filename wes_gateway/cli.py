"""The ``wes-gateway`` command line."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError
from sqlalchemy import func, inspect, make_url, select
from sqlalchemy.exc import IntegrityError, OperationalError

from wes_gateway import __version__
from wes_gateway.domain import tokens
from wes_gateway.domain.errors import InvalidField
from wes_gateway.domain.models import ApiToken, Run, User
from wes_gateway.infra import logs, supervisor
from wes_gateway.infra.config import METRICS_FOLDER_ENV, SERVICE_PREFIX, Settings
from wes_gateway.infra.db import Database, make_engine

if TYPE_CHECKING:
    from connexion import FlaskApp

BOOTSTRAP_ADMIN = "admin"


SETTINGS_EPILOG = (
    "Settings come from the environment: WES_GATEWAY_DATA_DIR (default ./wes-gateway-data, "
    "the database, broker files and run folders of the embedded default) and "
    "WES_GATEWAY_DATABASE_URL (default SQLite in that folder); the README lists the rest."
)


def _settings() -> Settings:
    """The settings, or one line per wrong one (not a traceback)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = SERVICE_PREFIX + "_".join(map(str, error["loc"])).upper()
            problems.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
        raise click.ClickException("; ".join(problems)) from None


def _prepared_database(settings: Settings) -> Database:
    """The database, created or upgraded to this version's schema (serve, db upgrade)."""
    settings.ensure_data_dir()
    _upgrade_apart(settings.effective_database_url)
    return Database.from_settings(settings)


def _existing_database(settings: Settings) -> Database:
    """The database ``serve`` or ``db upgrade`` made, upgraded to this version's schema.
    Where there is none, refuses, naming where it looked, instead of making an empty one
    wherever the command happens to run."""
    missing = _missing_database(settings)
    if missing:
        raise click.ClickException(missing)
    _upgrade_apart(settings.effective_database_url)
    return Database.from_settings(settings)


def _missing_database(settings: Settings) -> str | None:
    url = make_url(settings.effective_database_url)
    first = "start 'wes-gateway serve' or run 'wes-gateway db upgrade' with the same settings"
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or Path(url.database).exists():
            return None
        if settings.database_url:
            return f"no database at {url.database} (WES_GATEWAY_DATABASE_URL); {first} first"
        return (
            f"no wes-gateway database in {settings.data_dir} (WES_GATEWAY_DATA_DIR, default "
            f"./wes-gateway-data of the current folder); {first} first"
        )
    shown = url.render_as_string(hide_password=True)
    engine = make_engine(settings.effective_database_url, pooled=False)
    try:
        made = inspect(engine).has_table(Run.__tablename__)
    except OperationalError as exc:
        return f"cannot reach the database {shown}: {str(exc.orig).strip()}"
    finally:
        engine.dispose()
    return None if made else f"the database {shown} has no wes-gateway tables; {first} first"


def _upgrade(database_url: str) -> None:
    from wes_gateway.infra import migrations

    migrations.upgrade(database_url)


def _upgrade_apart(database_url: str) -> None:
    """Apply the migrations in a forked child, so that a long-lived process (an API
    process above all) never holds Alembic and Mako in memory (about 3 MB resident)."""
    child = multiprocessing.get_context("fork").Process(target=_upgrade, args=(database_url,))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise click.ClickException("upgrading the database failed (see the error above)")


def _bootstrap_admin(db: Database) -> str | None:
    """On a database with no users yet, make the first administrator and return its token."""
    try:
        with db.session() as session:
            if session.execute(select(func.count()).select_from(User)).scalar_one():
                return None
            user = tokens.ensure_user(session, BOOTSTRAP_ADMIN, admin=True)
            _, token = tokens.create_token(session, user, description="created on first start")
            return token
    except IntegrityError:
        return None  # another process bootstrapped at the same moment


@click.group(epilog=SETTINGS_EPILOG)
@click.version_option(__version__, prog_name="wes-gateway")
def main() -> None:
    """wes-gateway: Nextflow runs behind GA4GH WES 1.1 and a Tower-style API."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="API processes sharing the port, each with its own database connections.",
)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the APIs (creating or upgrading the database first)."""
    import uvicorn

    settings = _settings()
    db = _prepared_database(settings)
    admin_token = _bootstrap_admin(db)
    db.dispose()
    if admin_token is not None:
        click.echo(
            f"Created user {BOOTSTRAP_ADMIN!r} (administrator). Its API token, shown only "
            "this once:\n\n"
            f"    {admin_token}\n\n"
            "Send it as 'Authorization: Bearer <token>'. More: wes-gateway token create --help",
        )
    sys.stdout.flush()
    _share_metrics(settings)
    if workers == 1:
        from wes_gateway.http.app import create_app

        app: FlaskApp | str = create_app(settings)
        processes: dict[str, Any] = {}
    else:
        # Each API process imports and builds its own app (its own database engine); the
        # database, the first admin, the worker and the scheduler are made once, here.
        app, processes = "wes_gateway.cli:api_process_app", {"factory": True, "workers": workers}
    # Uvicorn shuts down gracefully on SIGTERM, then raises the signal again: let that
    # end the process through Python, so the worker and scheduler are stopped first.
    # (Uvicorn's manager of several API processes handles SIGTERM itself, then returns.)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Head jobs the worker child starts report to this server (-with-tower).
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    trace_url = settings.public_url or f"http://{reachable}:{port}"
    with supervisor.workers_beside_the_api(settings.runs_embedded_worker, public_url=trace_url):
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="info",
            log_config=logs.uvicorn_config(),
            proxy_headers=True,
            **processes,
        )


def _share_metrics(settings: Settings) -> None:
    """Have this server's API processes and the worker it runs write their metrics into one
    folder, so /metrics shows them all (unless the operator chose a folder already). It
    must be set before any process imports prometheus_client."""
    if os.environ.get(METRICS_FOLDER_ENV):
        return
    folder = settings.data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)  # samples of an earlier server's processes
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[METRICS_FOLDER_ENV] = str(folder)


def api_process_app() -> FlaskApp:
    """The app of one API process of ``serve --workers N``, which the kernel stops if the
    ``serve`` process dies without stopping it."""
    from wes_gateway.http.app import create_asgi_app

    supervisor._die_with_parent()
    return create_asgi_app()


@main.command()
@click.option(
    "--concurrency",
    "-c",
    default=4,
    show_default=True,
    type=int,
    help="Tasks run at once (tasks are short: no run holds a slot).",
)
@click.option("--loglevel", default="INFO", show_default=True)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve this worker's Prometheus metrics (poll cycles, cloud calls) on this port.",
)
def worker(concurrency: int, loglevel: str, metrics_port: int | None) -> None:
    """Run a Celery worker for this service (as many as you like, on any host)."""
    _existing_database(_settings()).dispose()
    from wes_gateway.infra.queue import make_celery

    settings = _settings()
    app = make_celery(settings)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    app.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency}",
            "--pool=threads",
            "-Q",
            settings.queue,
            "-n",
            f"wes-gateway-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
        ]
    )


@main.command()
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Run the scheduler of periodic work (one per deployment)."""
    _existing_database(_settings()).dispose()
    from wes_gateway.infra.queue import make_celery

    app = make_celery(_settings())
    app.Beat(loglevel=loglevel).run()


@main.group()
def token() -> None:
    """Create, list and revoke API tokens."""


@token.command("create")
@click.argument("user")
@click.option("--admin", is_flag=True, help="The user may see and act on every run.")
@click.option("--description", default=None, help="A note stored with the token.")
@click.option("--read-only", is_flag=True, help="A token that may only read (GET) on both APIs.")
def token_create(user: str, admin: bool, description: str | None, read_only: bool) -> None:
    """Create a token for USER (created if new) and print it alone on stdout. A user name
    is 1 to 40 letters, digits, '.', '_' or '-', starting with a letter or digit."""
    try:
        tokens.check_user_name(user, "USER")
    except InvalidField as exc:
        raise click.UsageError(exc.message) from None
    db = _existing_database(_settings())
    with db.session() as session:
        row_user = tokens.ensure_user(session, user, admin=admin, field="USER")
        row, text = tokens.create_token(
            session,
            row_user,
            description=description,
            scope=tokens.SCOPE_READ if read_only else tokens.SCOPE_ALL,
        )
        token_id = row.id
    click.echo(f"token id {token_id} for user {user!r}" + (" (admin)" if admin else ""), err=True)
    click.echo(text)


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke the token TOKEN_ID (shown by 'token create' and 'token list')."""
    db = _existing_database(_settings())
    with db.session() as session:
        revoked = tokens.revoke_token(session, token_id)
    if not revoked:
        raise click.ClickException(f"no active token with id {token_id!r}")
    click.echo(f"revoked {token_id}", err=True)


@token.command("list")
def token_list() -> None:
    """List tokens: id, user, admin, created, revoked, scope."""
    db = _existing_database(_settings())
    with db.session() as session:
        rows = session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.run_id.is_(None))
            .order_by(ApiToken.created_at)
        ).all()
        for row, user in rows:
            revoked = row.revoked_at.isoformat() if row.revoked_at else "-"
            click.echo(
                f"{row.id}\t{user.name}\t{'admin' if user.is_admin else 'user'}\t"
                f"{row.created_at.isoformat()}\t{revoked}\t{row.scope}"
            )


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the schema migrations."""
    from wes_gateway.infra import migrations

    settings = _settings()
    settings.ensure_data_dir()
    migrations.upgrade(settings.effective_database_url, revision)
    click.echo(f"database at {revision}", err=True)


def _with_settings_epilog(group: click.Group) -> None:
    """Every command's --help names where the service keeps its data."""
    for command in group.commands.values():
        command.epilog = command.epilog or SETTINGS_EPILOG
        if isinstance(command, click.Group):
            _with_settings_epilog(command)


_with_settings_epilog(main)
