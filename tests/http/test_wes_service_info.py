from __future__ import annotations

import pytest

from tests.conftest import WES, submit
from wes_gateway.domain.states import State


def test_service_info_is_public_and_complete(client):
    response = client.get(f"{WES}/service-info")
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"}
    for field in ("id", "name", "organization", "version"):
        assert body[field]
    assert body["workflow_type_versions"] == {"NFL": {"workflow_type_version": ["DSL2"]}}
    assert body["workflow_engine_versions"] == {
        "nextflow": {"workflow_engine_version": ["24.10.4"]}
    }
    assert "1.1.0" in body["supported_wes_versions"]
    assert body["auth_instructions_url"].startswith("http")
    assert isinstance(body["tags"], dict)
    names = {p["name"] for p in body["default_workflow_engine_parameters"]}
    assert names == {
        "revision",
        "profile",
        "config",
        "entry",
        "main_script",
        "resume",
        "latest",
        "compute_env_id",
        "stub_run",
        "session_id",
        "work_dir",
        "workspaceId",
        "head_job_cpus",
        "head_job_memory_mb",
        "pre_run_script",
        "post_run_script",
        "user_secrets",
        "workspace_secrets",
        "run_name",
        "labelIds",
        "with_report",
        "with_trace",
        "with_dag",
        "with_timeline",
        "preview",
        "dump_hashes",
    }
    # The Nextflow versions a run may ask for: the default, the first, the form, and the
    # version each kind of compute environment runs when a run names none.
    assert body["tags"]["nextflow_version_default"] == "24.10.4"
    assert body["tags"]["nextflow_version_min"] == "22.10.0"
    assert body["tags"]["nextflow_version.local-platform"] == "24.10.4"
    assert body["tags"]["nextflow_version.aws-batch"] == "24.10.4"
    assert all(
        isinstance(p["default_value"], str) for p in body["default_workflow_engine_parameters"]
    )
    assert set(body["system_state_counts"]) == {state.value for state in State}


def test_state_counts_follow_runs(client, alice, bob):
    for _ in range(3):
        submit(client, alice)
    run_id = submit(client, bob)
    client.post(f"{WES}/runs/{run_id}/cancel", headers=bob)
    counts = client.get(f"{WES}/service-info").json()["system_state_counts"]
    assert counts["QUEUED"] == 3
    assert counts["CANCELED"] == 1
    assert sum(counts.values()) == 4


def test_auth_instructions_page_is_served(client):
    url = client.get(f"{WES}/service-info").json()["auth_instructions_url"]
    response = client.get(url)
    assert response.status_code == 200
    assert "Authorization: Bearer" in response.text


@pytest.mark.backing_independent
def test_engine_version_is_read_from_the_installed_nextflow(tmp_path):
    from wes_gateway.domain.launch import EngineVersion

    fake = tmp_path / "nextflow"
    fake.write_text(
        "#!/bin/sh\necho '      N E X T F L O W'\necho '      version 25.10.2 build 5959'\n"
    )
    fake.chmod(0o755)
    probe = EngineVersion(str(fake), "1.0.0")
    assert probe.value == "1.0.0"
    probe._detect()
    assert probe.value == "25.10.2"
    missing = EngineVersion(str(tmp_path / "absent"), "1.0.0")
    missing._detect()
    assert missing.value == "1.0.0"


def test_state_counts_are_reused_for_their_max_age(settings, db, client, alice):
    """Counting reads every run: service-info reuses a count for a while, then counts again."""
    from wes_gateway.domain.launch import EngineVersion
    from wes_gateway.http.runtime import Runtime

    runtime = Runtime(
        settings=settings.model_copy(update={"state_counts_max_age": 3600.0}),
        db=db,
        engine_version=EngineVersion("nextflow-not-installed", "24.10.4"),
    )
    submit(client, alice)
    assert runtime.state_counts()["QUEUED"] == 1
    submit(client, alice)
    assert runtime.state_counts()["QUEUED"] == 1  # the count made a moment ago
    runtime.settings = settings  # max age 0: counted again
    assert runtime.state_counts()["QUEUED"] == 2


def test_while_one_call_counts_the_runs_the_others_get_the_last_count(
    client, alice, app, monkeypatch
):
    """service-info and /metrics count the runs at most every few seconds, and a call
    that comes while the count is under way answers with the last one at once."""
    import threading

    from wes_gateway.domain import runs

    runtime = app.app.extensions["wes_gateway"]
    # A count is reused for a while (the suite's settings reuse none, so that every call
    # sees the runs a test has just made).
    monkeypatch.setattr(
        runtime, "settings", runtime.settings.model_copy(update={"state_counts_max_age": 2.0})
    )
    submit(client, alice)
    runtime._counts = None
    before = client.get(f"{WES}/service-info").json()["system_state_counts"]
    assert before["QUEUED"] >= 1
    counting, release = threading.Event(), threading.Event()
    real = runs.state_counts

    def slow(session):
        counting.set()
        release.wait(10)
        return {**real(session), "QUEUED": 12345}

    monkeypatch.setattr(runs, "state_counts", slow)
    runtime._counts = (runtime._counts[0] - 3600, runtime._counts[1])  # now stale
    answers: list[dict] = []
    first = threading.Thread(
        target=lambda: answers.append(
            client.get(f"{WES}/service-info").json()["system_state_counts"]
        )
    )
    first.start()
    assert counting.wait(10)
    during = client.get(f"{WES}/service-info").json()["system_state_counts"]
    assert during == before  # not held up by the count under way
    metrics = client.get("/metrics").text
    assert f'state="QUEUED"}} {before["QUEUED"]}' in metrics.replace(".0\n", "\n")
    release.set()
    first.join(10)
    assert answers and answers[0]["QUEUED"] == 12345
    assert client.get(f"{WES}/service-info").json()["system_state_counts"]["QUEUED"] == 12345
