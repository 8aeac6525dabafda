"""Tower launch, launch info, metrics, logs and downloads."""

from __future__ import annotations

import json

import pytest

from tests.conftest import WES, add_tasks, submit
from tests.domain.test_trace import _replay, run_token, sample
from tests.http.test_tower_workflows import example, missing_keys
from tests.http.test_wes_submit import ended
from wes_gateway.domain.models import Task


def _launch(client, headers, **launch):
    return client.post("/api/workflow/launch", headers=headers, json={"launch": launch})


def test_launch_makes_the_same_run_a_wes_client_would(client, alice):
    response = _launch(
        client,
        alice,
        pipeline="https://github.com/nf-core/rnaseq",
        revision="3.14.0",
        configProfiles=["test", "docker"],
        paramsText="input: samples.csv\nreads: 3\n",
        runName="my_rnaseq",
        entryName="MAIN",
        pullLatest=True,
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"workflowId"}
    run_id = response.json()["workflowId"]
    run = client.get(f"{WES}/runs/{run_id}", headers=alice).json()
    assert run["state"] == "QUEUED"
    assert run["request"]["workflow_url"] == "https://github.com/nf-core/rnaseq"
    assert run["request"]["workflow_params"] == {"input": "samples.csv", "reads": 3}
    assert run["request"]["workflow_engine_parameters"] == {
        "revision": "3.14.0",
        "profile": "test,docker",
        "entry": "MAIN",
        "latest": "true",
    }
    described = client.get(f"/api/workflow/{run_id}", headers=alice).json()["workflow"]
    assert described["runName"] == "my_rnaseq" and described["status"] == "SUBMITTED"


@pytest.mark.parametrize(
    "launch,field",
    [
        ({"pipeline": "file:///etc"}, "pipeline"),
        ({"pipeline": "-x"}, "pipeline"),
        ({"pipeline": "nf-core/demo", "revision": "--foo"}, "revision"),
        ({"pipeline": "nf-core/demo", "configProfiles": ["a b"]}, "configProfiles"),
        ({"pipeline": "nf-core/demo", "entryName": "$(x)"}, "entryName"),
        ({"pipeline": "nf-core/demo", "paramsText": "[1, 2"}, "paramsText"),
        ({"pipeline": "nf-core/demo", "paramsText": "- a list"}, "paramsText"),
        ({"pipeline": "nf-core/demo", "runName": "a b"}, "runName"),
        ({"pipeline": "nf-core/demo", "preRunScript": "rm -rf /"}, "preRunScript"),
        ({"pipeline": "nf-core/demo", "computeEnvId": "nope"}, "computeEnvId"),
    ],
)
def test_bad_launches_name_the_tower_field(client, alice, launch, field):
    response = _launch(client, alice, **launch)
    assert response.status_code == 400
    assert response.json()["message"].startswith(f"launch.{field}:"), response.json()
    assert client.get(f"{WES}/runs", headers=alice).json()["runs"] == []


@pytest.mark.parametrize("field", ["pullLatest", "resume"])
@pytest.mark.parametrize("value", ["yes", "true", "maybe", 1, 0, "", [True]])
def test_launch_switches_are_json_booleans(client, alice, field, value):
    """As Seqera's launch request types them: "yes", "true" (text) or 1 is a 400 naming the
    switch, not a run that pulls or resumes."""
    response = _launch(client, alice, pipeline="nf-core/demo", **{field: value})
    assert response.status_code == 400, response.text
    assert response.json()["message"] == f"launch.{field}: must be true or false"
    assert client.get(f"{WES}/runs", headers=alice).json()["runs"] == []


@pytest.mark.parametrize(
    ("launch", "options"),
    [
        ({"pullLatest": True}, {"latest": "true"}),
        ({"pullLatest": False, "resume": False}, {}),
        ({"pullLatest": None, "resume": None}, {}),
        ({"resume": True}, {"resume": "true"}),
        (
            {"resume": True, "sessionId": "5f1c3a52-8c1e-4f0e-9d7a-2b3c4d5e6f70"},
            {"resume": "5f1c3a52-8c1e-4f0e-9d7a-2b3c4d5e6f70"},
        ),
    ],
)
def test_launch_switches_as_booleans(client, alice, db, launch, options):
    if launch.get("resume"):  # an ended run of the session to resume
        earlier = _launch(
            client, alice, pipeline="nf-core/demo", sessionId="5f1c3a52-8c1e-4f0e-9d7a-2b3c4d5e6f70"
        )
        ended(db, earlier.json()["workflowId"])
    response = _launch(client, alice, pipeline="nf-core/demo", **launch)
    assert response.status_code == 200, response.text
    run = client.get(f"{WES}/runs/{response.json()['workflowId']}", headers=alice).json()
    assert run["request"]["workflow_engine_parameters"] == options


def test_launch_info_relaunches(client, alice):
    first = _launch(
        client,
        alice,
        pipeline="nf-core/demo",
        revision="1.0",
        configProfiles=["test"],
        paramsText='{"n": 1}',
    ).json()["workflowId"]
    info = client.get(f"/api/workflow/{first}/launch", headers=alice).json()
    assert (
        missing_keys(
            info,
            {
                # resumeCommitId comes once Nextflow reported the commit (until then tw
                # relaunches without resuming, as it does on Seqera).
                "launch": {
                    k: ""
                    for k in (
                        "id",
                        "computeEnv",
                        "pipeline",
                        "revision",
                        "configProfiles",
                        "paramsText",
                        "sessionId",
                        "workDir",
                        "resumeDir",
                        "dateCreated",
                    )
                }
            },
        )
        == []
    )
    launch = {
        k: info["launch"][k] for k in ("pipeline", "revision", "configProfiles", "paramsText")
    }
    again = client.post("/api/workflow/launch", headers=alice, json={"launch": launch})
    assert again.status_code == 200
    second = again.json()["workflowId"]
    request = client.get(f"{WES}/runs/{second}", headers=alice).json()["request"]
    assert request["workflow_params"] == {"n": 1}
    assert request["workflow_engine_parameters"] == {"revision": "1.0", "profile": "test"}


def test_metrics_are_what_nextflow_reported(client, alice, db):
    run_id = submit(client, alice)
    assert client.get(f"/api/workflow/{run_id}/metrics", headers=alice).json() == {"metrics": []}
    _replay(client, run_token(db, run_id), run_id)
    body = client.get(f"/api/workflow/{run_id}/metrics", headers=alice).json()

    def as_reported(entry: dict) -> dict:
        """Without what Tower adds: a number per entry, warnings per series."""
        return {
            key: {k: v for k, v in value.items() if k != "warnings"}
            if isinstance(value, dict)
            else value
            for key, value in entry.items()
            if key != "id"
        }

    # A series Nextflow sent as null (no data) is left out: Seqera's schema has no null one.
    reported = [
        {key: value for key, value in entry.items() if value is not None}
        for entry in sample("05-complete", run_id)["metrics"]
    ]
    assert [as_reported(m) for m in body["metrics"]] == reported
    documented = example("describe-workflow-execution-metrics")
    for entry in documented["metrics"]:  # the sample run reported no memory use
        entry.pop("mem"), entry.pop("vmem")
    assert missing_keys(body, documented) == []


def test_log_pages_through_the_console(client, alice, run_dir):
    run_id = submit(client, alice)
    lines = [f"line {n} " + "x" * (n % 7) for n in range(200)]
    (run_dir(run_id) / f"nf-{run_id}.txt").write_text("\n".join(lines) + "\n")
    seen, token, pages = [], None, 0
    while True:
        params = {"maxLength": 100} | ({"next": token} if token else {})
        response = client.get(f"/api/workflow/{run_id}/log", headers=alice, params=params)
        assert response.status_code == 200
        log = response.json()["log"]
        assert log["pending"] is True  # the run has not ended
        seen += log["entries"]
        pages += 1
        if not log["entries"]:
            break
        token = log["forwardToken"]
    assert seen == lines and pages > 10
    first = client.get(f"/api/workflow/{run_id}/log", headers=alice).json()
    assert missing_keys(first, example("describe-workflow-log")) == []
    assert first["log"]["entries"] == lines and first["log"]["truncated"] is False
    names = [d["fileName"] for d in first["log"]["downloads"]]
    assert names == [f"nf-{run_id}.txt", f"nf-{run_id}.log", f"timeline-{run_id}.html"]
    for bad in ("x/12", "f/abc", "12"):
        response = client.get(f"/api/workflow/{run_id}/log", headers=alice, params={"next": bad})
        assert response.status_code == 400 and response.json()["message"].startswith("next:")


def test_downloads_come_from_the_allow_list_only(client, alice, bob, run_dir):
    run_id = submit(client, alice)
    (run_dir(run_id) / f"nf-{run_id}.txt").write_text("console\n")
    response = client.get(f"/api/workflow/{run_id}/download", headers=alice)
    assert response.status_code == 200 and response.text == "console\n"
    assert f"nf-{run_id}.txt" in response.headers["content-disposition"]
    for bad in (
        "../../etc/passwd",
        "/etc/passwd",
        f"nf-{run_id}.txt/../x",
        "params.json",
        "exitcode",
        "nf-OTHERRUN00000.txt",
    ):
        response = client.get(
            f"/api/workflow/{run_id}/download", headers=alice, params={"fileName": bad}
        )
        assert response.status_code == 400, bad
        assert response.json()["message"].startswith("fileName:")
    missing = client.get(
        f"/api/workflow/{run_id}/download", headers=alice, params={"fileName": f"nf-{run_id}.log"}
    )
    assert missing.status_code == 404
    assert client.get(f"/api/workflow/{run_id}/download", headers=bob).status_code == 404


def test_task_files_inside_the_run_only(client, alice, db, run_dir):
    run_id = submit(client, alice)
    add_tasks(db, run_id, 2)
    inside = run_dir(run_id) / "launch" / "work" / "ab" / "cdef"
    inside.mkdir(parents=True)
    (inside / ".command.out").write_text("hello from task 1\n")
    with db.session() as session:
        tasks = {t.task_id: t for t in session.query(Task).filter(Task.run_id == run_id)}
        tasks[1].workdir = str(inside)
        tasks[2].workdir = "/etc"  # what a hostile trace could claim
    response = client.get(f"/api/workflow/{run_id}/download/1", headers=alice)
    assert response.status_code == 200 and response.text == "hello from task 1\n"
    # WES task logs link to the same file, readable with the same token.
    stdout_url = client.get(f"{WES}/runs/{run_id}/tasks/1", headers=alice).json()["stdout"]
    assert client.get(stdout_url, headers=alice).text == "hello from task 1\n"
    log = client.get(f"/api/workflow/{run_id}/log/1", headers=alice).json()["log"]
    assert log["entries"] == ["hello from task 1"]
    assert [d["fileName"] for d in log["downloads"]] == [
        ".command.out",
        ".command.err",
        ".command.log",
    ]
    assert client.get(f"/api/workflow/{run_id}/download/2", headers=alice).status_code == 404
    bad = client.get(
        f"/api/workflow/{run_id}/download/1", headers=alice, params={"fileName": ".command.sh"}
    )
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("launch", "field"),
    [
        ({"runName": "My-run-"}, "runName"),  # Nextflow: a - or _ only between two letters
        ({"runName": "9lives"}, "runName"),  # … a letter first
        ({"runName": "a" * 81}, "runName"),  # … at most 80
        ({"runName": "last"}, "runName"),  # … and not `last`
        ({"workDir": "/tmp/elsewhere"}, "workDir"),  # local: the run's own folder
        ({"sessionId": "nope"}, "sessionId"),
        ({"headJobCpus": 4}, "headJobCpus"),  # local: not a per-run setting
        ({"headJobMemoryMb": 8192}, "headJobMemoryMb"),
        ({"stubRun": "yes"}, "stubRun"),
        ({"launchContainer": "me/nextflow:1"}, "launchContainer"),
        ({"userSecrets": ["TOKEN"]}, "userSecrets"),
        ({"outputDir": "results"}, "outputDir"),
        ({"noSuchField": 1}, "noSuchField"),
    ],
)
def test_launch_fields_run_as_asked_or_are_refused(client, alice, launch, field):
    response = _launch(client, alice, pipeline="nf-core/demo", **launch)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"launch.{field}:"), response.json()
    assert client.get(f"{WES}/runs", headers=alice).json()["runs"] == []


def test_nextflow_run_names_are_accepted(client, alice):
    for name in ("my-run", "My_run_2", "a" * 80):
        assert _launch(client, alice, pipeline="nf-core/demo", runName=name).status_code == 200


def test_every_launch_field_is_echoed(client, alice):
    launch = {
        "pipeline": "nf-core/demo",
        "revision": "1.0",
        "configProfiles": ["test"],
        "configText": "process.cpus = 2\n",
        "paramsText": '{"n": 1}',
        "mainScript": "other.nf",
        "entryName": "ALT",
        "runName": "echoed",
        "sessionId": "5f1c3a52-8c1e-4f0e-9d7a-2b3c4d5e6f70",
        "stubRun": True,
        "pullLatest": True,
        "dateCreated": "2026-12-01T00:00:00Z",
    }
    run_id = _launch(client, alice, **launch).json()["workflowId"]
    echoed = client.get(f"/api/workflow/{run_id}/launch", headers=alice).json()["launch"]
    for key, value in launch.items():
        if key != "dateCreated":
            assert echoed[key] == value, key
    assert echoed["resume"] is False
    # A local run: the launch shows the local environment's work dir (a relaunch gets a
    # folder of its own there) and, to resume in, the run's own work dir.
    env = client.get("/api/compute-envs/local", headers=alice).json()["computeEnv"]
    assert echoed["workDir"] == env["config"]["workDir"]
    assert echoed["resumeDir"].startswith(echoed["workDir"] + f"/{run_id}/")


def test_a_wes_config_shows_as_the_launch_config_text(client, alice, db):
    run_id = submit(
        client,
        alice,
        workflow_engine_parameters=json.dumps(
            {"config": "process.cpus = 2\n", "entry": "ALT", "main_script": "x.nf"}
        ),
    )
    launch = client.get(f"/api/workflow/{run_id}/launch", headers=alice).json()["launch"]
    assert launch["configText"] == "process.cpus = 2\n"
    assert launch["entryName"] == "ALT" and launch["mainScript"] == "x.nf"
    # Nextflow reports its resolved config on the workflow; the launch keeps what was sent.
    with_token = run_token(db, run_id)
    begin = sample("02-begin", run_id)
    begin["workflow"]["configText"] = "resolved {}"
    assert client.put(f"/api/trace/{run_id}/begin", headers=with_token, json=begin).is_success
    workflow = client.get(f"/api/workflow/{run_id}", headers=alice).json()["workflow"]
    assert workflow["configText"] == "resolved {}"
    launch = client.get(f"/api/workflow/{run_id}/launch", headers=alice).json()["launch"]
    assert launch["configText"] == "process.cpus = 2\n"
