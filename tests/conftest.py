"""Shared fixtures: a real database built by the migrations, the app, users with tokens,
and a test client whose every WES response is checked against the official GA4GH spec.

The database is SQLite in a temporary folder by default. Set
``WES_GATEWAY_TEST_DATABASE_URL`` (for example
``postgresql+psycopg://postgres@127.0.0.1:5432/test``) to run the same suite on
PostgreSQL: a throwaway database is created next to the one named, and dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests import oracle
from wes_gateway.domain import tokens
from wes_gateway.domain.compute_envs import BUILTIN_ID
from wes_gateway.domain.models import Base, ComputeEnv, Task
from wes_gateway.http.app import create_app
from wes_gateway.infra import migrations
from wes_gateway.infra.config import Settings
from wes_gateway.infra.db import Database

# The cloud stand-ins' fixtures (aws, fake_google, ...) and the cloud tests' worker.
pytest_plugins = (
    "tests.fakes.aws",
    "tests.fakes.google_cloud",
    "tests.cloud",
    "tests.slurm_cluster",
)

WES = "/ga4gh/wes/v1"
TEST_DATABASE_ENV = "WES_GATEWAY_TEST_DATABASE_URL"
# The servers the suite can run on; CI runs it once without them, then with them.
TEST_SERVER_ENVS = (TEST_DATABASE_ENV, "WES_GATEWAY_TEST_REDIS_URL", "WES_GATEWAY_TEST_AMQP_URL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked ``backing_independent`` runs the same on any backing, so it runs on
    the embedded default only; with a test server named it is skipped. Such a test must
    not use the suite's database (it would not be independent of it)."""
    named = [name for name in TEST_SERVER_ENVS if os.environ.get(name)]
    skip = pytest.mark.skip(reason="the same on every backing: runs with no test server named")
    for item in items:
        if item.get_closest_marker("backing_independent") is None:
            continue
        if "database_url" in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(f"{item.nodeid} uses the suite's database: not independent")
        if named:
            item.add_marker(skip)


@contextmanager
def throwaway_postgres(configured: str) -> Iterator[str]:
    """A new, empty database on the server of ``configured``, dropped afterwards."""
    base = make_url(configured)
    name = f"wes_gateway_test_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def empty_database(folder: Path) -> Iterator[str]:
    """An empty database of the suite's kind: SQLite in ``folder``, or PostgreSQL."""
    configured = os.environ.get(TEST_DATABASE_ENV)
    if not configured:
        yield f"sqlite:///{folder / 'test.db'}"
        return
    with throwaway_postgres(configured) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with empty_database(tmp_path_factory.mktemp("db")) as url:
        migrations.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Settings:
    # The data folder sits alone in a folder of its own, so a test can watch everything
    # around it (the path-traversal tests) without seeing the other tests' files.
    data_dir = tmp_path_factory.mktemp("service") / "data"
    data_dir.mkdir()
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key="test-signing-key",
        validate_responses=True,
        state_counts_max_age=0.0,  # tests read the counts right after changing runs
        # An event stream answered in-process ends soon, so a test reads its whole body.
        events_stream_seconds=0.3,
        nextflow="nextflow-not-installed",
        nextflow_version="24.10.4",
    )


@pytest.fixture(scope="session")
def app(settings: Settings):
    return create_app(settings)


@pytest.fixture(scope="session")
def db(app) -> Database:
    return app.app.extensions["wes_gateway"].db


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, the session's tables are emptied, and the folders of its runs go
    with their rows (so a test that walks the data folder walks what it made, not what
    every earlier test left)."""
    yield
    if "settings" in request.fixturenames:
        _remove_run_folders(request.getfixturevalue("settings").runs_dir)
    if "db" not in request.fixturenames:
        return
    db: Database = request.getfixturevalue("db")
    with db.session() as session:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name == ComputeEnv.__tablename__:
                # The built-in one the migrations create stays, as it was.
                session.execute(table.delete().where(table.c.id != BUILTIN_ID))
                session.execute(
                    table.update().values(primary=True, deleted=False, status="AVAILABLE")
                )
            else:
                session.execute(table.delete())


def _remove_run_folders(runs_dir: Path) -> None:
    if not runs_dir.is_dir():
        return
    for entry in runs_dir.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)  # never follows a symlink inside
        else:
            entry.unlink(missing_ok=True)


@pytest.fixture
def client(app) -> Iterator[httpx.Client]:
    """The app's test client; every WES response is validated against the official spec."""
    with app.test_client() as test_client:
        test_client.event_hooks["response"].append(oracle.check_response)
        yield test_client


@pytest.fixture
def make_user(db: Database):
    """make_user(name, admin=False) -> request headers carrying a fresh token of that user."""

    def make(name: str, admin: bool = False) -> dict[str, str]:
        with db.session() as session:
            user = tokens.ensure_user(session, name, admin=admin)
            _, token = tokens.create_token(session, user)
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def alice(make_user) -> dict[str, str]:
    return make_user("alice")


@pytest.fixture
def bob(make_user) -> dict[str, str]:
    return make_user("bob")


@pytest.fixture
def admin(make_user) -> dict[str, str]:
    return make_user("root", admin=True)


def submit(client: httpx.Client, headers: dict[str, str], **overrides) -> str:
    """POST /runs as multipart with sensible defaults; returns the run id."""
    fields = {
        "workflow_type": "NFL",
        "workflow_type_version": "DSL2",
        "workflow_url": "nf-core/demo",
        "workflow_params": '{"input": "samples.csv"}',
    }
    fields.update(overrides)
    files = fields.pop("files", None) or [("workflow_attachment", ("note.txt", b"x"))]
    response = client.post(f"{WES}/runs", headers=headers, data=fields, files=files)
    assert response.status_code == 200, response.text
    return response.json()["run_id"]


# Every WES path that names one run, with its method.
BY_ID_ENDPOINTS = [
    ("get", ""),
    ("get", "/status"),
    ("post", "/cancel"),
    ("get", "/tasks"),
    ("get", "/tasks/1"),
    ("get", "/stdout"),
    ("get", "/stderr"),
    ("get", "/outputs/results/a.txt"),
]


def add_tasks(db: Database, run_id: str, count: int) -> None:
    """Tasks 1..count of a run, as the trace calls would record them."""
    with db.session() as session:
        for number in range(1, count + 1):
            session.add(
                Task(
                    run_id=run_id,
                    task_id=number,
                    name=f"ALIGN ({number})",
                    process="ALIGN",
                    status="COMPLETED",
                    exit_status=0,
                    start=datetime(2026, 1, 1, 0, 0, number % 60, tzinfo=UTC),
                    complete=datetime(2026, 1, 1, 0, 1, number % 60, tzinfo=UTC),
                    data={"script": f"echo {number}", "workdir": f"/work/{number:02x}"},
                )
            )


@pytest.fixture
def run_dir(settings: Settings):
    def folder(run_id: str) -> Path:
        return settings.runs_dir / run_id

    return folder
