"""The launch-side request sequences of the Tower clients, replayed call by call as their
source makes them, every JSON answer checked against Seqera's spec:

- `tw runs view` (ViewCmd): describeWorkflow(labels), describeWorkflowProgress,
  describeWorkflowLaunch; it unboxes the WorkflowLoad counters and reads
  `launch.computeEnv.name`.
- `tw runs relaunch` (RelaunchCmd): describeWorkflow, describeWorkflowLaunch, then a
  launch built from them (`launch.computeEnv.id`, resumeDir or workDir, resumeCommitId).
- `tw runs dump` (DumpCmd): service-info, describeWorkflow(labels, optimized),
  describeWorkflowLaunch, progress, `GET /launch/{workflow.launchId}`, metrics, tasks
  (pages of 100), the `nf-<id>.log` download, task files (a 404 skipped).
- `tw launch https://… --compute-env <name>` (LaunchCmd.runNextflowPipeline): the
  AVAILABLE compute environments, the named one described, then a launch carrying its
  `workDir`, `preRunScript` and `postRunScript`.
- `nextflow launch` (nf-tower LaunchCommandImpl): user-info, the compute environments
  (the primary one, its `workDir`), the launch, the workflow, then log polling: it
  prints the entries past the count it has shown.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import submit
from tests.domain.test_trace import _replay, run_token, sample
from tests.http.test_wes_submit import ended
from tests.oracle import seqera
from wes_gateway.domain.models import ComputeEnv, Run, Task

API = "/api"
AWS = {
    "name": "aws-prod",
    "platform": "aws-batch",
    "config": {
        "region": "eu-west-1",
        "headQueue": "head-queue",
        "workDir": "s3://bucket/work",
        "preRunScript": "export FROM_ENV=1",
        "postRunScript": "echo finished",
    },
}
# What tw's generated client sends for a launch field it has no value for.
TW_UNSET = dict.fromkeys(
    (
        "runName",
        "commitId",
        "userSecrets",
        "workspaceSecrets",
        "towerConfig",
        "schemaName",
        "optimizationId",
        "optimizationTargets",
        "labelIds",
        "headJobCpus",
        "headJobMemoryMb",
        "launchContainer",
    )
)


def _as_seqera_types_it(body):
    """Two fields Seqera's spec types by the Java type behind them, not by their JSON:
    ``LogPage.entries`` (an ``Iterator<String>``, typed as an object; sent and read as an
    array of strings) and ``workflow.params`` (a ``Map<String, Object>``, each value typed
    as an object; a pipeline's parameters are any JSON). Those are held to their JSON
    shape here, and the rest of the body to Seqera's schema."""
    if not isinstance(body, dict):
        return body
    log = body.get("log")
    if isinstance(log, dict) and "entries" in log:
        entries = log["entries"]
        assert isinstance(entries, list) and all(isinstance(e, str) for e in entries)
        body = {**body, "log": {**log, "entries": {}}}
    workflow = body.get("workflow")
    if isinstance(workflow, dict) and "params" in workflow:
        assert isinstance(workflow["params"], dict)
        body = {**body, "workflow": {**workflow, "params": {}}}
    return body


@pytest.fixture
def seqera_client(client):
    """Every JSON answer of a Tower operation Seqera has, checked against its spec."""

    def check(response: httpx.Response) -> None:
        response.read()
        is_json = response.headers.get("content-type", "").startswith("application/json")
        if response.is_success and is_json and response.content:
            seqera.validate(
                response.request.method,
                response.request.url.path,
                response.status_code,
                _as_seqera_types_it(response.json()),
            )

    client.event_hooks["response"].append(check)
    return client


class Client:
    """A Tower client's calls, each expected to succeed."""

    def __init__(self, client, headers):
        self.client, self.headers = client, headers

    def get(self, path, **params):
        response = self.client.get(f"{API}{path}", headers=self.headers, params=params)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    def launch(self, launch: dict) -> httpx.Response:
        return self.client.post(
            f"{API}/workflow/launch", headers=self.headers, json={"launch": launch}
        )


def _launched(client, headers, **launch) -> str:
    response = Client(client, headers).launch({"pipeline": "nextflow-io/hello", **launch})
    assert response.status_code == 200, response.text
    return response.json()["workflowId"]


def _ran_tasks(db, run_id: str) -> None:
    """Tasks as the trace calls record them, with the fields the metrics read."""
    rows = [
        ("COMPLETED", 60_000, 150.0, 1_000_000, 10),
        ("COMPLETED", 120_000, 190.0, 3_000_000, 30),
        ("CACHED", 30_000, 50.0, 2_000_000, 20),
        ("FAILED", 10_000, 90.0, 500_000, 5),
    ]
    with db.session() as session:
        for number, (status, realtime, pcpu, rss, rchar) in enumerate(rows, start=1):
            session.add(
                Task(
                    run_id=run_id,
                    task_id=number,
                    name=f"sayHello ({number})",
                    process="sayHello",
                    status=status,
                    exit_status=1 if status == "FAILED" else 0,
                    start=datetime(2026, 1, 1, 0, 0, number, tzinfo=UTC),
                    complete=datetime(2026, 1, 1, 0, 5, number, tzinfo=UTC),
                    data={
                        "realtime": realtime,
                        "cpus": 2,
                        "pcpu": pcpu,
                        "peakRss": rss,
                        "peakVmem": rss * 2,
                        "rchar": rchar,
                        "wchar": rchar * 3,
                        "memory": 4_000_000,
                        "errorAction": "IGNORE" if status == "FAILED" else None,
                    },
                )
            )
        session.execute(update(Run).where(Run.id == run_id).values(state="RUNNING"))
        session.commit()


def test_tw_runs_view(seqera_client, alice, db):
    run = _launched(seqera_client, alice)
    _ran_tasks(db, run)
    tw = Client(seqera_client, alice)
    described = tw.get(f"/workflow/{run}", attributes="labels")
    workflow = described["workflow"]
    load = tw.get(f"/workflow/{run}/progress")["progress"]
    launch = tw.get(f"/workflow/{run}/launch")["launch"]
    # general: launch.computeEnv.name ("-" when there is none); the local one counts.
    assert launch["computeEnv"]["name"] == "local"
    assert launch["computeEnv"]["platform"] == "local-platform"
    assert workflow["launchId"] and workflow["status"] == "RUNNING"
    # --status and --processes unbox every counter (Java long): none may be absent.
    workflow_load = load["workflowProgress"]
    for key in ("pending", "submitted", "running", "cached", "succeeded", "failed"):
        assert isinstance(workflow_load[key], int), key
    (process,) = load["processesProgress"]
    completed = process["succeeded"] + process["cached"]
    total = sum(
        process[k] for k in ("pending", "running", "cached", "submitted", "succeeded", "failed")
    )
    assert (completed, total) == (3, 4)
    # --stats: cpuTime, memoryRss, readBytes, writeBytes (cost may be absent).
    assert workflow_load["cpuTime"] == (60_000 + 120_000 + 30_000 + 10_000) * 2
    assert workflow_load["readBytes"] == 65
    # Tower's derived stats, computed while Nextflow has sent none.
    stats = workflow["stats"]
    assert (stats["succeedCount"], stats["cachedCount"], stats["ignoredCount"]) == (2, 1, 1)
    assert (stats["succeedCountFmt"], stats["cachedCountFmt"]) == ("2", "1")
    assert (stats["failedCountFmt"], stats["ignoredCountFmt"]) == ("1", "1")
    assert (stats["succeedPct"], stats["cachedPct"], stats["ignoredPct"]) == (50.0, 25.0, 25.0)
    assert stats["failedPct"] == 0.0
    assert stats["succeedDuration"] == 360_000 and stats["cachedDuration"] == 60_000
    assert stats["computeTimeFmt"] == "0.1 (13.6% cached, 4.5% failed)"
    # The metrics box stats, from the same task records.
    (metrics,) = tw.get(f"/workflow/{run}/metrics")["metrics"]
    assert metrics["process"] == "sayHello"
    assert (metrics["mem"]["min"], metrics["mem"]["max"]) == (500_000, 3_000_000)
    assert metrics["mem"]["maxLabel"] == "sayHello (2)"
    assert metrics["vmem"]["max"] == 6_000_000
    assert metrics["cpuUsage"]["max"] == 95.0  # 190 %CPU over 2 cpus
    assert (metrics["reads"]["q2"], metrics["writes"]["q2"]) == (15.0, 45.0)


def test_tw_runs_list_and_the_tasks_of_a_run(seqera_client, alice, db):
    run = _launched(seqera_client, alice)
    _ran_tasks(db, run)
    tw = Client(seqera_client, alice)
    counted = tw.get("/workflow", includeTotalSize="true", attributes="labels")
    assert counted["totalSize"] == 1 and counted["workflows"][0]["workflow"]["id"] == run
    assert "totalSize" not in tw.get("/workflow", max=10, offset=0)
    tasks = tw.get(f"/workflow/{run}/tasks", max=100, offset=0)
    assert tasks["total"] == 4 and tasks["tasks"][3]["task"]["status"] == "FAILED"
    assert tw.get(f"/workflow/{run}/task/1")["task"]["taskId"] == 1


def _commit(db, run_id: str, commit: str) -> None:
    with db.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(commit_id=commit))
        session.commit()


def _relaunch(tw: Client, run: str, *, no_resume: bool) -> httpx.Response:
    """RelaunchCmd.exec, with no option given."""
    workflow = tw.get(f"/workflow/{run}")["workflow"]
    launch = tw.get(f"/workflow/{run}/launch")["launch"]
    no_resume = no_resume or launch.get("resumeCommitId") is None
    resume = not no_resume
    work_dir = launch.get("resumeDir") if resume else launch.get("workDir") or workflow["workDir"]
    request = {
        **TW_UNSET,
        "id": workflow.get("launchId"),
        "sessionId": workflow["sessionId"] if resume else launch.get("sessionId"),
        "computeEnvId": launch["computeEnv"]["id"],
        "pipeline": launch["pipeline"],
        "workDir": work_dir,
        "revision": launch.get("revision") if no_resume else launch["resumeCommitId"],
        "configProfiles": launch.get("configProfiles"),
        "configText": launch.get("configText"),
        "paramsText": launch.get("paramsText"),
        "preRunScript": launch.get("preRunScript"),
        "postRunScript": launch.get("postRunScript"),
        "mainScript": launch.get("mainScript"),
        "entryName": launch.get("entryName"),
        "resume": resume,
        "pullLatest": launch.get("pullLatest"),
        "stubRun": launch.get("stubRun"),
        "dateCreated": "2026-12-04T10:00:00Z",
    }
    return tw.launch(request)


@pytest.mark.parametrize("platform", ["local", "aws"])
def test_tw_runs_relaunch_with_and_without_resuming(seqera_client, admin, alice, db, platform):
    tw = Client(seqera_client, alice)
    env = {}
    if platform == "aws":
        created = seqera_client.post(
            f"{API}/compute-envs", headers=admin, json={"computeEnv": AWS}
        ).json()
        env = {"computeEnvId": created["computeEnvId"]}
    first = _launched(seqera_client, alice, revision="master", configProfiles=["test"], **env)
    ended(db, first)
    # Before Nextflow reported a commit, tw relaunches without resuming.
    fresh = _relaunch(tw, first, no_resume=False)
    assert fresh.status_code == 200, fresh.text
    fresh_launch = tw.get(f"/workflow/{fresh.json()['workflowId']}/launch")["launch"]
    assert fresh_launch["resume"] is False and fresh_launch["revision"] == "master"
    # tw sends the session it relaunches; not resumed, the run begins a session of its own.
    assert fresh_launch["sessionId"] != tw.get(f"/workflow/{first}")["workflow"]["sessionId"]
    _commit(db, first, "a9012339ce857d6ec7a078281813d8a93645a3e7")
    resumed = _relaunch(tw, first, no_resume=False)
    assert resumed.status_code == 200, resumed.text
    again = tw.get(f"/workflow/{resumed.json()['workflowId']}/launch")["launch"]
    assert (
        again["resume"] is True
        and again["sessionId"] == (tw.get(f"/workflow/{first}")["workflow"]["sessionId"])
    )
    assert again["revision"] == "a9012339ce857d6ec7a078281813d8a93645a3e7"
    assert again["computeEnv"]["id"] == (env.get("computeEnvId") or "local")
    not_resumed = _relaunch(tw, first, no_resume=True)
    assert not_resumed.status_code == 200, not_resumed.text


def test_tw_runs_dump(seqera_client, alice, db, run_dir):
    run = _launched(seqera_client, alice, configProfiles=["test"], paramsText='{"n": 2}')
    _ran_tasks(db, run)
    run_dir(run).mkdir(parents=True, exist_ok=True)
    (run_dir(run) / f"nf-{run}.log").write_text("Dec-04 10:00:00.000 [main] DEBUG nextflow\n")
    tw = Client(seqera_client, alice)
    assert tw.get("/service-info")["serviceInfo"]["version"]
    described = tw.get(f"/workflow/{run}", attributes="labels,optimized")
    workflow = described["workflow"]
    assert workflow["launchId"]  # a launched run: dump collects its launch and log
    workflow_launch = tw.get(f"/workflow/{run}/launch")["launch"]
    assert isinstance(tw.get(f"/workflow/{run}/progress")["progress"]["workflowProgress"], dict)
    launch = tw.get(f"/launch/{workflow['launchId']}")["launch"]
    for key in ("pipeline", "configProfiles", "paramsText", "workDir", "sessionId"):
        assert launch[key] == workflow_launch[key], key
    assert launch["computeEnv"]["name"] == "local" and launch["id"] == workflow["launchId"]
    assert tw.get(f"/workflow/{run}/metrics")["metrics"][0]["process"] == "sayHello"
    tasks, offset = [], 0
    while True:
        page = tw.get(f"/workflow/{run}/tasks", max=100, offset=offset)["tasks"]
        tasks += [item["task"] for item in page]
        if len(page) < 100:
            break
        offset += 100
    assert [task["taskId"] for task in tasks] == [1, 2, 3, 4]
    log = seqera_client.get(
        f"{API}/workflow/{run}/download", headers=alice, params={"fileName": f"nf-{run}.log"}
    )
    assert log.status_code == 200 and "DEBUG nextflow" in log.text
    # Task files the run folder does not hold: tw skips a 404 (or 400).
    missing = seqera_client.get(
        f"{API}/workflow/{run}/download/1", headers=alice, params={"fileName": ".command.out"}
    )
    assert missing.status_code in (400, 404)


def test_only_a_launched_run_has_a_launch_and_only_its_viewers_see_it(client, alice, bob, db):
    launched = submit(client, alice)  # a WES run is launched here too
    _replay(client, run_token(db, launched), launched)  # and stays so once traced
    launch_id = client.get(f"{API}/workflow/{launched}", headers=alice).json()["workflow"][
        "launchId"
    ]
    assert client.get(f"{API}/launch/{launch_id}", headers=alice).status_code == 200
    assert client.get(f"{API}/launch/{launch_id}", headers=bob).status_code == 404
    assert client.get(f"{API}/launch/nope", headers=alice).status_code == 404
    # `nextflow run -with-tower`: a monitored run, no launch (tw dump skips it).
    body = {k: v for k, v in sample("01-create").items() if k != "workflowId"}
    created = client.post(f"{API}/trace/create", headers=alice, json=body)
    assert created.status_code == 200, created.text
    monitored = created.json()["workflowId"]
    workflow = client.get(f"{API}/workflow/{monitored}", headers=alice).json()["workflow"]
    assert "launchId" not in workflow
    assert client.get(f"{API}/launch/{monitored}", headers=alice).status_code == 404


def _tw_launch_url(tw: Client, env_ref: str, **options) -> httpx.Response:
    """LaunchCmd.runNextflowPipeline: the compute environment by name among the
    AVAILABLE ones, described, and its workDir and scripts carried into the launch;
    options (--pre-run, --work-dir, ...) win over what it copied."""
    listed = tw.get("/compute-envs", status="AVAILABLE")["computeEnvs"]
    (env_id,) = [env["id"] for env in listed if env_ref in (env["id"], env["name"])]
    env = tw.get(f"/compute-envs/{env_id}")["computeEnv"]
    config = env["config"]
    launch = {
        **TW_UNSET,
        "id": None,
        "pipeline": "https://github.com/nextflow-io/hello",
        "computeEnvId": env["id"],
        "workDir": config.get("workDir"),
        "revision": None,
        "configProfiles": None,
        "configText": None,
        "paramsText": None,
        "preRunScript": config.get("preRunScript"),
        "postRunScript": config.get("postRunScript"),
        "mainScript": None,
        "entryName": None,
        "pullLatest": None,
        "stubRun": None,
    }
    launch.update(options)
    return tw.launch(launch)


def _available(db, env_id: str) -> None:
    with db.session() as session:
        session.execute(
            update(ComputeEnv).where(ComputeEnv.id == env_id).values(status="AVAILABLE")
        )
        session.commit()


@pytest.mark.parametrize("as_admin", [False, True], ids=["launch-role", "admin"])
def test_tw_launch_a_url_on_a_cloud_environment_with_its_scripts(
    seqera_client, admin, alice, db, as_admin
):
    created = seqera_client.post(f"{API}/compute-envs", headers=admin, json={"computeEnv": AWS})
    env_id = created.json()["computeEnvId"]
    _available(db, env_id)
    headers = admin if as_admin else alice
    tw = Client(seqera_client, headers)
    # A non-administrator reads the scripts masked and copies the mask back: the
    # environment's own scripts, not refused and not run as "********".
    response = _tw_launch_url(tw, "aws-prod")
    assert response.status_code == 200, response.text
    run = response.json()["workflowId"]
    launch = tw.get(f"/workflow/{run}/launch")["launch"]
    assert launch["computeEnv"]["id"] == env_id and launch["workDir"] == "s3://bucket/work"
    assert "preRunScript" not in launch  # the environment's own, not one of the launch
    with db.session() as session:
        options = session.get(Run, run).request["workflow_engine_parameters"]
    assert "pre_run_script" not in options and "post_run_script" not in options
    # --pre-run / --post-run of its own: accepted on a cloud, shown back, run in the head job.
    own = _tw_launch_url(tw, env_id, preRunScript="echo mine", postRunScript="echo after")
    assert own.status_code == 200, own.text
    launch = tw.get(f"/workflow/{own.json()['workflowId']}/launch")["launch"]
    assert (launch["preRunScript"], launch["postRunScript"]) == ("echo mine", "echo after")


def test_tw_launch_a_url_on_the_local_environment(seqera_client, alice, settings, monkeypatch):
    tw = Client(seqera_client, alice)
    response = _tw_launch_url(tw, "local")
    assert response.status_code == 200, response.text
    launch = tw.get(f"/workflow/{response.json()['workflowId']}/launch")["launch"]
    assert launch["computeEnv"]["name"] == "local"
    assert launch["resumeDir"].startswith(launch["workDir"] + "/")
    # A script of its own: off on the local platform unless the operator allows it.
    refused = _tw_launch_url(tw, "local", preRunScript="echo hi")
    assert refused.status_code == 400
    message = refused.json()["message"]
    assert message.startswith("launch.preRunScript:") and "WES_GATEWAY_LOCAL_SCRIPTS" in message
    monkeypatch.setattr(settings, "local_scripts", True)
    allowed = _tw_launch_url(tw, "local", preRunScript="echo hi", postRunScript="echo bye")
    assert allowed.status_code == 200, allowed.text
    launch = tw.get(f"/workflow/{allowed.json()['workflowId']}/launch")["launch"]
    assert (launch["preRunScript"], launch["postRunScript"]) == ("echo hi", "echo bye")


def test_every_compute_environment_in_the_list_has_a_work_dir(seqera_client, admin, alice):
    seqera_client.post(f"{API}/compute-envs", headers=admin, json={"computeEnv": AWS})
    listed = Client(seqera_client, alice).get("/compute-envs")["computeEnvs"]
    assert {env["name"]: bool(env.get("workDir")) for env in listed} == {
        "local": True,
        "aws-prod": True,
    }


def _nextflow_launch(client, headers) -> tuple[str, str]:
    """LaunchCommandImpl up to the launch: user-info, the primary compute environment
    (no -compute-env), its workDir (no -w), the launch, the workflow."""
    nf = Client(client, headers)
    user = nf.get("/user-info")["user"]
    assert user["id"] and user["userName"]
    envs = nf.get("/compute-envs")["computeEnvs"]
    (env,) = [env for env in envs if env.get("primary") is True]
    work_dir = env.get("workDir")
    assert work_dir, "nextflow launch: Work directory is required"
    launch = {
        "computeEnvId": env["id"],
        "workDir": work_dir,
        "pipeline": "https://github.com/nextflow-io/hello",
        "resume": False,
        "pullLatest": None,
        "stubRun": None,
    }
    response = nf.launch(launch)
    assert response.status_code == 200, response.text
    run = response.json()["workflowId"]
    workflow = nf.get(f"/workflow/{run}")["workflow"]
    return run, workflow.get("runName", "unknown")


def test_nextflow_launch_prints_every_line_of_a_long_console(seqera_client, alice, run_dir, db):
    run, _ = _nextflow_launch(seqera_client, alice)
    run_dir(run).mkdir(parents=True, exist_ok=True)
    console = run_dir(run) / f"nf-{run}.txt"
    nf = Client(seqera_client, alice)
    printed: list[str] = []
    written: list[str] = []

    def poll() -> None:
        """One round of runLogPollingLoop: the status, then the log; entries past the
        count shown so far are printed."""
        assert nf.get(f"/workflow/{run}")["workflow"]["status"]
        entries = nf.get(f"/workflow/{run}/log")["log"].get("entries") or []
        if len(entries) > len(printed):
            printed.extend(entries[len(printed) :])

    poll()
    assert printed == []
    # The console grows well past one 64 KiB page between polls.
    for chunk in range(6):
        lines = [f"[{chunk}:{n:05d}] " + "x" * 60 for n in range(400)]
        with console.open("a") as stream:
            stream.write("\n".join(lines) + "\n")
        written += lines
        poll()
        assert printed == written
    ended(db, run)
    poll()
    assert printed == written and len(written) * 70 > 160 * 1024


def test_the_log_with_next_keeps_paging(seqera_client, alice, run_dir):
    run, _ = _nextflow_launch(seqera_client, alice)
    lines = [f"line {n:05d} " + "y" * 80 for n in range(2000)]
    run_dir(run).mkdir(parents=True, exist_ok=True)
    (run_dir(run) / f"nf-{run}.txt").write_text("\n".join(lines) + "\n")
    nf = Client(seqera_client, alice)
    whole = nf.get(f"/workflow/{run}/log")["log"]
    assert whole["entries"] == lines and whole["truncated"] is False
    first = nf.get(f"/workflow/{run}/log", maxLength=65536)["log"]
    assert first["truncated"] is True and 0 < len(first["entries"]) < len(lines)
    assert first["message"]  # says how to read on
    seen, token = list(first["entries"]), first["forwardToken"]
    while True:
        page = nf.get(f"/workflow/{run}/log", next=token)["log"]
        if not page["entries"]:
            break
        seen += page["entries"]
        token = page["forwardToken"]
    assert seen == lines
