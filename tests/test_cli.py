"""The command line as a user runs it: the console script in a child process."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import WES
from tests.live import cli_env, output_of, run_cli, serve, submit_over_http
from wes_gateway.models import ApiToken, User


def test_token_create_prints_the_token_alone(tmp_path, db, database_url):
    env = cli_env(tmp_path, database_url)
    created = run_cli(env, "token", "create", "carol")
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    assert len(lines) == 1 and " " not in lines[0]
    assert "carol" in created.stderr

    listed = run_cli(env, "token", "list")
    assert listed.returncode == 0
    token_id = created.stderr.split()[2]
    assert token_id in listed.stdout

    revoked = run_cli(env, "token", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    again = run_cli(env, "token", "revoke", token_id)
    assert again.returncode != 0
    assert "no active token" in again.stderr


def test_token_create_refuses_a_name_outside_the_pattern(tmp_path, db, database_url):
    """`token create ""` made a nameless user; now every bad name is a usage error that
    names the argument, and no user or token is made."""
    env = cli_env(tmp_path, database_url)
    for name in ("", "a b", "-rf", "x" * 41):
        refused = run_cli(env, "token", "create", "--", name)
        assert refused.returncode == 2, (name, refused.stdout, refused.stderr)
        assert refused.stdout == ""
        assert "USER: must be 1 to 40 letters, digits" in refused.stderr, refused.stderr
    with db.session() as session:
        assert session.execute(select(User)).all() == []
        assert session.execute(select(ApiToken)).all() == []


@pytest.mark.backing_independent  # SQLite in the data folder
def test_db_upgrade_is_idempotent(tmp_path):
    env = cli_env(tmp_path, None)
    for _ in range(2):
        result = run_cli(env, "db", "upgrade")
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "wes-gateway.db").exists()


@pytest.mark.backing_independent  # the embedded default
def test_serve_on_a_fresh_data_folder_prints_one_admin_token(tmp_path):
    """The quick start: serve creates the database, prints an admin token once, and a run
    submitted with curl-like calls is listed QUEUED."""
    env = cli_env(tmp_path / "data", None)
    with serve(env) as (base, process):
        first = output_of(process)
        tokens = [line.strip() for line in first.splitlines() if line.startswith("    ")]
        assert len(tokens) == 1, first
        headers = {"Authorization": f"Bearer {tokens[0]}"}
        info = httpx.get(f"{base}{WES}/service-info").json()
        assert info["type"]["artifact"] == "wes"
        run_id = submit_over_http(base, headers)
        listed = httpx.get(f"{base}{WES}/runs", headers=headers).json()["runs"]
        assert listed == [{"run_id": run_id, "state": "QUEUED", "tags": {}}]
        assert httpx.get(f"{base}{WES}/ui/").status_code == 200
    with serve(env) as (base, process):
        assert "shown only" not in output_of(process)
        assert httpx.get(f"{base}{WES}/runs", headers=headers).json()["runs"][0]["run_id"] == (
            run_id
        )
