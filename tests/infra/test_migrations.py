"""The schema is the migrations': built from empty, stepped down and up again, and equal
to the models (no pending autogenerate diff)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from tests import conftest
from wes_gateway.domain.models import Base
from wes_gateway.infra import migrations
from wes_gateway.infra.db import make_engine


@pytest.fixture
def empty_database(tmp_path):
    with conftest.empty_database(tmp_path) as url:
        yield url


def _tables(url: str) -> set[str]:
    engine = make_engine(url, pooled=False)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _pending_diff(url: str) -> list:
    engine = make_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_server_default": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_upgrade_from_empty_matches_the_models(empty_database):
    migrations.upgrade(empty_database)
    assert _tables(empty_database) == set(Base.metadata.tables)
    assert _pending_diff(empty_database) == []


def test_every_step_goes_down_and_up_again(empty_database):
    script = ScriptDirectory.from_config(migrations.alembic_config(empty_database))
    revisions = [rev.revision for rev in script.walk_revisions()]  # newest first
    migrations.upgrade(empty_database)
    for revision in revisions:
        down_to = script.get_revision(revision).down_revision or "base"
        migrations.downgrade(empty_database, down_to)
        migrations.upgrade(empty_database, revision)
        migrations.downgrade(empty_database, down_to)
    assert _tables(empty_database) == set()
    migrations.upgrade(empty_database)
    assert _pending_diff(empty_database) == []
