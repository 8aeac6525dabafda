"""The command line as a user runs it: the console script in a child process."""

from __future__ import annotations

import importlib.util
import subprocess

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from tests.conftest import WES
from tests.live import cli_env, command, output_of, run_cli, serve, submit_over_http
from wes_gateway.domain.models import ApiToken, User
from wes_gateway.infra.config import Settings


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
@pytest.mark.parametrize(
    "args",
    [
        ("token", "list"),
        ("token", "create", "alice"),
        ("token", "revoke", "abc"),
        ("worker",),
        ("beat",),
    ],
)
def test_commands_but_serve_and_db_upgrade_make_no_database(tmp_path, args):
    env = cli_env(tmp_path / "wes-gateway-data", None)
    result = subprocess.run(
        command(*args), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert result.stderr.startswith(f"Error: no wes-gateway database in {tmp_path}/wes-gateway")
    assert "WES_GATEWAY_DATA_DIR" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # not even the data folder


@pytest.mark.backing_independent
def test_a_server_database_without_the_schema_is_named(tmp_path):
    env = cli_env(tmp_path, "postgresql://nobody@127.0.0.1:1/nowhere")
    result = run_cli(env, "token", "list")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith(
        "Error: cannot reach the database postgresql+psycopg://nobody@127.0.0.1:1/nowhere:"
    )


def test_postgres_urls_as_platforms_write_them_work(tmp_path, database_url):
    if not database_url.startswith("postgresql+psycopg://"):
        pytest.skip("the suite runs on SQLite")
    for scheme in ("postgresql://", "postgres://"):
        env = cli_env(tmp_path, scheme + database_url.split("://", 1)[1])
        created = run_cli(env, "token", "create", "pat")
        assert created.returncode == 0, created.stderr
        assert run_cli(env, "db", "upgrade").returncode == 0


@pytest.mark.backing_independent
def test_postgres_urls_mean_the_installed_driver(monkeypatch):
    url = "postgresql://svc:pw@db.internal:5432/wes"
    expected = "postgresql+psycopg://svc:pw@db.internal:5432/wes"
    assert Settings(database_url=url).database_url == expected
    assert Settings(database_url="postgres://db/wes").database_url == "postgresql+psycopg://db/wes"
    assert Settings(database_url="sqlite:////x.db").database_url == "sqlite:////x.db"
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a)
    )
    with pytest.raises(ValidationError, match=r"pip install 'wes-gateway\[postgres\]'"):
        Settings(database_url=url)


@pytest.mark.backing_independent
def test_every_help_names_the_data_folder_setting(tmp_path):
    env = cli_env(tmp_path / "data", None)
    for args in [(), ("serve",), ("worker",), ("beat",), ("token",), ("token", "create"),
                 ("token", "list"), ("token", "revoke"), ("db",), ("db", "upgrade")]:  # fmt: skip
        shown = run_cli(env, *args, "--help")
        assert shown.returncode == 0, shown.stderr
        assert "WES_GATEWAY_DATA_DIR" in " ".join(shown.stdout.split()), args
    assert not (tmp_path / "data").exists()


@pytest.mark.backing_independent
def test_a_wrong_setting_is_one_line_naming_it(tmp_path):
    env = cli_env(tmp_path, None, WES_GATEWAY_POLL_INTERVAL="often")
    result = run_cli(env, "serve")
    assert result.returncode != 0
    assert result.stderr.startswith("Error: WES_GATEWAY_POLL_INTERVAL: ")
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


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


def test_token_create_read_only_makes_a_token_that_only_reads(tmp_path, db, database_url, client):
    env = cli_env(tmp_path, database_url)
    created = run_cli(env, "token", "create", "reader", "--read-only")
    assert created.returncode == 0, created.stderr
    headers = {"Authorization": f"Bearer {created.stdout.strip()}"}
    assert client.get("/api/user-info", headers=headers).status_code == 200
    refused = client.post("/api/tokens", headers=headers, json={"name": "more"})
    assert refused.status_code == 403
    assert "scope 'read'" in refused.json()["message"]
    token_id = created.stderr.split()[2]
    (line,) = [row for row in run_cli(env, "token", "list").stdout.splitlines() if token_id in row]
    assert line.split("\t")[-1] == "read"
