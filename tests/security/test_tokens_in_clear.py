"""A token is shown once, to whoever it was made for, and then never again: not in error
bodies, not in logs, not in the database (only its SHA-256), not in a run's files or a
head job's command line. The head job gets its run's token in its environment only."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import WES, empty_database
from tests.live import (
    Client,
    _processes,
    admin_token,
    execution_env,
    output_of,
    run_cli,
    serve,
)
from tests.security.evidence import all_text
from tests.security.operations import all_operations, ids_of
from wes_gateway.domain import tokens
from wes_gateway.infra.config import Settings
from wes_gateway.infra.db import Database


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].split()[1]


def _secret(token: str) -> str:
    return tokens.parse_token(token)[1]


def _forgeries(token: str) -> list[str]:
    """Tokens like ``token`` that must not work: a wrong secret, an unknown id."""
    token_id, secret = tokens.parse_token(token)
    wrong = secret[:-1] + ("0" if secret[-1] != "0" else "1")
    return [tokens.format_token(token_id, wrong), tokens.format_token("x" * 12, secret)]


def _basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"@token:{token}".encode()).decode()


def _clear_forms(token: str) -> list[str]:
    """How a token could show: as sent, its secret, or inside a Basic header."""
    return [token, _secret(token), _basic(token).split()[1]]


def _leaked(text: str, tokens: list[str]) -> list[str]:
    return [form for token in tokens for form in _clear_forms(token) if form in text]


def test_tokens_never_show_in_responses_logs_or_the_database(
    client, db, alice, admin, victim, caplog
):
    """Good, forged and run-scoped tokens on every operation of both APIs."""
    good = [_token(alice), _token(admin), _token(victim.trace_headers)]
    forged = [forgery for token in good for forgery in _forgeries(token)]
    authorizations = [f"Bearer {token}" for token in good + forged]
    authorizations += [_basic(token) for token in good]  # as Nextflow sends a legacy token
    responses: list[httpx.Response] = []
    with caplog.at_level(logging.DEBUG):
        # Revoking all of a user's tokens goes last: the tokens must work until then.
        last = "DeleteAllTokens"
        for operation in sorted(all_operations(), key=lambda op: op.operation_id == last):
            url = operation.url(
                {
                    "run_id": victim.run_id,
                    "workflowId": victim.run_id,
                    "launchId": victim.run_id,
                    "task_id": 1,
                    "taskId": 1,
                    "computeEnvId": "local",
                    "tokenId": 1,
                    "path": "standin/out.txt",
                }
                | ids_of(1)
            )
            for authorization in authorizations:
                response = client.request(
                    operation.method.upper(),
                    url,
                    headers={"Authorization": authorization},
                    json={} if operation.body_types else None,
                )
                responses.append(response)
    assert {response.status_code for response in responses} >= {200, 400, 401, 404}
    for response in responses:
        shown = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
        assert _leaked(shown, good + forged) == [], (response.request.url, response.text)
    logged = caplog.text + "".join(repr(record.args) for record in caplog.records)
    assert _leaked(logged, good + forged) == []
    dump = all_text(db)
    assert _leaked(dump, good + forged) == []
    # The dump does hold the tokens' hashes: it covers the table they are in.
    assert all(hashlib.sha256(_secret(t).encode()).hexdigest() in dump for t in good)


def _file_hits(root: Path, tokens: list[str]) -> list[str]:
    """Files under ``root`` whose bytes hold a token in any clear form."""
    forms = [form.encode() for token in tokens for form in _clear_forms(token)]
    hits = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            try:
                data = path.read_bytes()
            except OSError:
                continue
            hits += [f"{path}: {form[:12]!r}..." for form in forms if form in data]
    return hits


def _head_job_token(data_dir: Path, run_id: str, timeout: float = 20) -> tuple[str, list[bytes]]:
    """The TOWER_ACCESS_TOKEN in the live head job's environment, and the command lines
    of every process of its job."""
    pid_file = data_dir / "runs" / run_id / "head.pid"
    deadline = time.monotonic() + timeout
    while not pid_file.exists():
        assert time.monotonic() < deadline, "the head job did not start"
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    token = next(
        item.split(b"=", 1)[1].decode()
        for item in environ
        if item.startswith(b"TOWER_ACCESS_TOKEN=")
    )
    command_lines = []
    for _, _, _, group, entry in _processes():
        if group == pid:
            try:
                command_lines.append((entry / "cmdline").read_bytes())
            except OSError:  # a process of the job (a task) that ended meanwhile
                continue
    return token, command_lines


@pytest.mark.slow
def test_a_launched_run_keeps_every_token_out_of_files_logs_and_the_database(tmp_path):
    """The whole path through ``wes-gateway serve``: the first admin token, a user's
    token from the command line, forged ones, and the head job's own token, which the
    stand-in uses for its trace calls until the run is cancelled."""
    with empty_database(tmp_path) as database_url:
        extra = (
            {} if database_url.startswith("sqlite") else {"WES_GATEWAY_DATABASE_URL": database_url}
        )
        env = execution_env(tmp_path / "data", **extra)
        data_dir = Path(env["WES_GATEWAY_DATA_DIR"])
        with serve(env) as (base, process):
            root = admin_token(process)
            created = run_cli(env, "token", "create", "alice")
            assert created.returncode == 0, created.stderr
            alice_token = created.stdout.strip()
            alice = Client(base, alice_token)
            run_id = alice.submit(standin_tasks=2, standin_task_seconds=0.2, standin_hang="true")
            head_token, command_lines = _head_job_token(data_dir, run_id)
            forged = _forgeries(alice_token) + _forgeries(head_token) + _forgeries(root)
            for token in forged + ["not-a-token", alice_token[:-2]]:
                response = httpx.get(
                    f"{base}{WES}/runs", headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code == 401
                assert token not in response.text
            # The head job reports with its token: the tasks show up.
            alice.wait(run_id, {"RUNNING"})
            deadline = time.monotonic() + 20
            while not alice.get(f"/runs/{run_id}/tasks").json()["task_logs"]:
                assert time.monotonic() < deadline, "the head job never reported a task"
                time.sleep(0.1)
            trace = {"Authorization": f"Bearer {head_token}"}
            assert httpx.get(f"{base}{WES}/runs", headers=trace).status_code == 200
            assert alice.cancel(run_id).status_code == 200
            assert alice.wait(run_id)[-1] == "CANCELED"
            # Its run over, the head job's token opens nothing but no-op trace calls.
            assert httpx.get(f"{base}{WES}/runs/{run_id}", headers=trace).status_code == 401
            heartbeat = httpx.put(f"{base}/api/trace/{run_id}/heartbeat", headers=trace, json={})
            assert heartbeat.status_code == 200
            log = alice.get(f"/runs/{run_id}").json()["run_log"]
            output = output_of(process)

        everyone = [alice_token, head_token, root, *forged]
        # serve prints the first administrator's token once, by design; nothing else.
        assert output.count(root) == 1 and f"    {root}\n" in output
        assert _leaked(output.replace(root, "<printed once>"), everyone) == [], output
        assert _leaked(" ".join(log["cmd"]) + str(log), everyone) == []
        assert [line for line in command_lines if _leaked(line.decode(), everyone)] == []
        assert _file_hits(data_dir, everyone) == []
        settings = Settings(data_dir=data_dir, database_url=extra.get("WES_GATEWAY_DATABASE_URL"))
        database = Database(settings.effective_database_url)
        try:
            dump = all_text(database)
        finally:
            database.engine.dispose()
    assert _leaked(dump, everyone) == []
    assert hashlib.sha256(_secret(head_token).encode()).hexdigest() in dump
