"""The Nextflow stand-in reads pipeline secrets as Nextflow's LocalSecretsProvider does,
and is as strict: a store others may read aborts the run, and a secret a process
declares that the store lacks fails it."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.live import STANDIN

pytestmark = pytest.mark.backing_independent  # the Nextflow stand-in alone, no gateway


def _run(tmp_path, store_mode: int | None, params: dict) -> subprocess.CompletedProcess[str]:
    store = tmp_path / "secrets" / "store.json"
    env = {**os.environ, "NXF_HOME": str(tmp_path / "home"), "NXF_SECRETS_FILE": str(store)}
    if store_mode is not None:
        store.parent.mkdir()
        store.write_text(json.dumps([{"name": "TOKEN", "value": "s3cret"}]))
        store.chmod(store_mode)
    return subprocess.run(
        [str(STANDIN), "run", "nf-core/demo", *(f"--{k}={v}" for k, v in params.items())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_declared_secret_reaches_the_task_and_not_the_console(tmp_path):
    result = _run(tmp_path, 0o600, {"standin_tasks": 1, "standin_secrets": "TOKEN"})
    assert result.returncode == 0, result.stdout + result.stderr
    (written,) = tmp_path.rglob("TOKEN.secret")
    assert written.read_text() == "s3cret"
    assert "s3cret" not in result.stdout + result.stderr
    assert "s3cret" not in (written.parent / ".command.sh").read_text()


def test_a_store_others_may_read_aborts(tmp_path):
    result = _run(tmp_path, 0o644, {"standin_tasks": 1})
    assert result.returncode == 1
    assert "Invalid permissions for secret store file" in result.stderr


def test_a_missing_secret_fails_the_run(tmp_path):
    result = _run(tmp_path, None, {"standin_tasks": 1, "standin_secrets": "TOKEN"})
    assert result.returncode == 1
    assert "Required secret is missing: 'TOKEN'" in result.stdout
