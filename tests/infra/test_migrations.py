"""The schema is the migrations': built from empty, stepped down and up again, and equal
to the models (no pending autogenerate diff)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

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


def test_the_upgrade_to_workspaces_keeps_every_run_with_its_owner(empty_database):
    """Runs and compute environments of the schema before workspaces: each user's runs
    stay theirs (personal workspace), the compute environments go to default/shared,
    where every user of the time takes part."""
    migrations.upgrade(empty_database, "0005")
    engine = make_engine(empty_database, pooled=False)
    now = "2026-01-01 00:00:00"
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (id, name, is_admin, created_at) VALUES "
                    f"(1, 'ann', false, '{now}'), (2, 'ben', false, '{now}'), "
                    f"(3, 'root', true, '{now}')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO compute_envs (id, owner_id, name, platform, config, status,"
                    ' "primary", deleted, created_at, updated_at) VALUES '
                    f"('aws1', 3, 'aws', 'aws-batch', '{{}}', 'AVAILABLE', true, false,"
                    f" '{now}', '{now}')"
                )
            )
            connection.execute(text("UPDATE compute_envs SET \"primary\" = false WHERE id='local'"))
            for run_id, owner in (("r1aaaaaaaaaaaa", 1), ("r2aaaaaaaaaaaa", 2)):
                connection.execute(
                    text(
                        "INSERT INTO runs (id, owner_id, state, source, created_at, updated_at,"
                        " request, tags, outputs, submit_attempts, compute_env_id) VALUES "
                        f"('{run_id}', {owner}, 'COMPLETE', 'wes', '{now}', '{now}', '{{}}',"
                        " '{}', '{}', 0, 'aws1')"
                    )
                )
        migrations.upgrade(empty_database)
        with engine.connect() as connection:
            runs = connection.execute(
                text("SELECT id, owner_id, workspace_id, compute_env_id FROM runs ORDER BY id")
            ).all()
            assert [tuple(row) for row in runs] == [
                ("r1aaaaaaaaaaaa", 1, None, "aws1"),
                ("r2aaaaaaaaaaaa", 2, None, "aws1"),
            ]
            envs = dict(connection.execute(text("SELECT id, workspace_id FROM compute_envs")).all())
            assert envs["local"] is None and envs["aws1"] is not None
            shared = connection.execute(
                text(
                    "SELECT o.name, w.name, w.visibility FROM workspaces w "
                    "JOIN organizations o ON o.id = w.org_id WHERE w.id = :id"
                ),
                {"id": envs["aws1"]},
            ).one()
            assert tuple(shared) == ("default", "shared", "SHARED")
            roles = connection.execute(
                text(
                    "SELECT u.name, m.role, p.role FROM participants p "
                    "JOIN org_members m ON m.id = p.member_id JOIN users u ON u.id = m.user_id "
                    "ORDER BY u.name"
                )
            ).all()
            assert [tuple(row) for row in roles] == [
                ("ann", "member", "launch"),
                ("ben", "member", "launch"),
                ("root", "owner", "owner"),
            ]
            primary = connection.execute(
                text('SELECT id FROM compute_envs WHERE "primary" ORDER BY id')
            ).scalars()
            assert list(primary) == ["aws1", "local"]
    finally:
        engine.dispose()
    assert _pending_diff(empty_database) == []


def test_the_upgrade_to_run_tags_fills_them_from_the_runs(empty_database):
    """Runs accepted before run_tags keep their tags, and are found by them."""
    migrations.upgrade(empty_database, "0007")
    engine = make_engine(empty_database, pooled=False)
    now = "2026-01-01 00:00:00"
    tagged = {
        "r1aaaaaaaaaaaa": '{"project": "p1", "sample": "s1"}',
        "r2aaaaaaaaaaaa": "{}",
        "r3aaaaaaaaaaaa": '{"project": "' + "v" * 1200 + '"}',
    }
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (id, name, is_admin, created_at) VALUES "
                    f"(1, 'ann', false, '{now}')"
                )
            )
            for run_id, tags in tagged.items():
                connection.execute(
                    text(
                        "INSERT INTO runs (id, owner_id, state, source, created_at, updated_at,"
                        " request, tags, outputs, submit_attempts) VALUES "
                        f"('{run_id}', 1, 'COMPLETE', 'wes', '{now}', '{now}', '{{}}',"
                        f" '{tags}', '{{}}', 0)"
                    )
                )
        migrations.upgrade(empty_database, "0011")
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT run_id, key, value FROM run_tags ORDER BY run_id, key")
            ).all()
        assert [tuple(row) for row in rows] == [
            ("r1aaaaaaaaaaaa", "project", "p1"),
            ("r1aaaaaaaaaaaa", "sample", "s1"),
            ("r3aaaaaaaaaaaa", "project", "v" * 1000),
        ]
    finally:
        engine.dispose()


def test_the_upgrade_to_kept_progress_counts_the_tasks_of_existing_runs(empty_database):
    """Runs whose tasks were written before progress was kept: the upgrade counts them,
    peaks from the tasks' start and end times included, as the trace would have kept them."""
    migrations.upgrade(empty_database, "0007")
    engine = make_engine(empty_database, pooled=False)
    now = "2026-01-01 00:00:00"
    tasks = [  # task, process, status, start (s), end (s), record
        (1, "ALIGN", "COMPLETED", 0, 100, '{"cpus": 2, "memory": 10, "realtime": 1000}'),
        (2, "ALIGN", "RUNNING", 50, None, '{"cpus": 4, "memory": 20, "executor": "slurm"}'),
        (3, None, "FAILED", 60, 70, '{"pcpu": 50.0, "realtime": 2000, "errorAction": "retry"}'),
        (4, "SORT", "NEW", None, None, "{}"),
    ]
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (id, name, is_admin, created_at) VALUES "
                    f"(1, 'ann', false, '{now}')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO runs (id, owner_id, state, source, created_at, updated_at,"
                    " request, tags, outputs, submit_attempts) VALUES "
                    f"('r1aaaaaaaaaaaa', 1, 'RUNNING', 'wes', '{now}', '{now}', '{{}}',"
                    " '{}', '{}', 0)"
                )
            )
            for task_id, process, status, start, end, record in tasks:
                connection.execute(
                    text(
                        "INSERT INTO tasks (run_id, task_id, process, status, start, complete,"
                        " data, updated_at) VALUES ('r1aaaaaaaaaaaa', :task, :process, :status,"
                        " :start, :end, :data, :now)"
                    ),
                    {
                        "task": task_id,
                        "process": process,
                        "status": status,
                        "start": None
                        if start is None
                        else f"2026-01-01 00:{start // 60:02}:{start % 60:02}.000000",
                        "end": None
                        if end is None
                        else f"2026-01-01 00:{end // 60:02}:{end % 60:02}.000000",
                        "data": record,
                        "now": now,
                    },
                )
        migrations.upgrade(empty_database)
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT process, tasks, pending, running, succeeded, failed, cpus, cpu_time,"
                    " cpu_load_milli, load_cpus, load_memory, peak_tasks, peak_cpus, peak_memory,"
                    " succeed_millis, failed_millis, retries, ignored"
                    " FROM task_loads WHERE run_id = 'r1aaaaaaaaaaaa' ORDER BY process"
                )
            ).all()
            executors = connection.execute(
                text("SELECT executors FROM task_loads WHERE process = ''")
            ).scalar_one()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [
        # the whole run: 1, 2 and 3 ran together from 60 s to 70 s
        # the stats' part: CPU time by status (realtime x cpus, 1 when unknown), and the
        # failure Nextflow retried
        ("", 4, 1, 1, 1, 1, 2, 2000, 1_000_000, 4, 20, 3, 6, 30, 2000, 2000, 1, 0),
        ("ALIGN", 2, 0, 1, 1, 0, 2, 2000, 0, 4, 20, 2, 6, 30, 2000, 0, 0, 0),
        ("SORT", 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        ("unknown", 1, 0, 0, 0, 1, 0, 0, 1_000_000, 0, 0, 1, 0, 0, 0, 2000, 1, 0),
    ]
    assert executors in ('["slurm"]', ["slurm"])
