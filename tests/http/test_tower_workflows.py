"""The Tower workflow endpoints over the same runs: list, describe, progress, tasks, task
and cancel, with the documented response shapes (tests/tower_examples/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import seqera_oracle
from tests.conftest import WES, submit
from tests.domain.test_trace import _replay, run_token
from wes_gateway.domain.states import State
from wes_gateway.domain.transitions import transition

EXAMPLES = Path(__file__).resolve().parent.parent / "tower_examples"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


# Passed through as Nextflow reports them: the pipeline's own params, stats whose keys
# follow the Nextflow version (the example is from 2020), and the manifest (its fields
# without a value left out).
FREE_FORM = {"params", "stats", "manifest"}
# Values this service has no means to know (a run's cost needs the cloud's prices): left
# out, as Seqera leaves out a field without a value.
NOT_KNOWN_HERE = {"cost"}


def missing_keys(ours, theirs, path="") -> list[str]:
    """Keys of the documented example (nested) that our body lacks. A key the example
    shows as null may be absent: Seqera's schema types none of them as nullable, so a
    field without a value is left out."""
    missing = []
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [path or "."]
        for key, value in theirs.items():
            if key not in ours and value is not None and key not in NOT_KNOWN_HERE:
                missing.append(f"{path}.{key}")
            elif key in ours and ours[key] is not None and key not in FREE_FORM:
                missing += missing_keys(ours[key], value, f"{path}.{key}")
    elif isinstance(theirs, list) and theirs and isinstance(ours, list) and ours:
        missing += missing_keys(ours[0], theirs[0], f"{path}[0]")
    return missing


@pytest.fixture
def traced_run(client, alice, db):
    """A launched run through which the sample trace was replayed."""
    run_id = submit(client, alice)
    _replay(client, run_token(db, run_id), run_id)
    return run_id


def test_describe_has_the_documented_keys_and_the_trace_s_values(client, alice, traced_run):
    response = client.get(f"/api/workflow/{traced_run}", headers=alice)
    assert response.status_code == 200
    body = response.json()
    assert missing_keys(body, example("describe-workflow")) == []
    workflow = body["workflow"]
    assert workflow["id"] == traced_run
    assert workflow["status"] == "SUCCEEDED" and workflow["success"] is True
    assert workflow["runName"] == "prickly_brenner"
    assert workflow["commitId"] == "a9012339ce857d6ec7a078281813d8a93645a3e7"
    assert workflow["stats"]["succeedCount"] == 4
    assert workflow["nextflow"]["version"] == "26.04.0"
    assert body["platform"]["id"] == "local-platform"


def test_progress_and_tasks(client, alice, traced_run):
    progress = client.get(f"/api/workflow/{traced_run}/progress", headers=alice).json()
    assert missing_keys(progress, example("describe-workflow-progress")) == []
    load = progress["progress"]["workflowProgress"]
    # The sample's second task never reported its end; the run's end ended it.
    assert (load["succeeded"], load["running"], load["aborted"]) == (1, 0, 1)
    (process,) = progress["progress"]["processesProgress"]
    assert process["process"] == "sayHello" and process["succeeded"] == 1
    assert load["cpuTime"] == 11  # realtime 11 ms x 1 cpu of the finished task
    assert load["readBytes"] == 89020

    tasks = client.get(f"/api/workflow/{traced_run}/tasks", headers=alice).json()
    assert tasks["total"] == 2
    documented = example("list-workflow-tasks")
    documented["tasks"][0]["task"].pop("tag")  # the sample's tasks have no tag
    assert missing_keys(tasks, documented) == []
    assert [t["task"]["taskId"] for t in tasks["tasks"]] == [1, 2]
    newest = client.get(
        f"/api/workflow/{traced_run}/tasks",
        headers=alice,
        params={"sortBy": "taskId", "sortDir": "desc", "max": 1},
    ).json()
    assert [t["task"]["taskId"] for t in newest["tasks"]] == [2] and newest["total"] == 2
    named = client.get(
        f"/api/workflow/{traced_run}/tasks", headers=alice, params={"search": "sayHello (2"}
    ).json()
    assert [t["task"]["name"] for t in named["tasks"]] == ["sayHello (2)"]

    for path in ("/task/1", "/tasks/1"):
        task = client.get(f"/api/workflow/{traced_run}{path}", headers=alice).json()
        documented = example("describe-workflow-task")
        documented["task"].pop("tag")
        assert missing_keys(task, documented) == []
        assert task["task"]["taskId"] == 1 and task["task"]["status"] == "COMPLETED"
    assert client.get(f"/api/workflow/{traced_run}/task/99", headers=alice).status_code == 404


def test_list_search_and_paging(client, alice, db, traced_run):
    others = [submit(client, alice) for _ in range(3)]
    both = client.get("/api/workflow", headers=alice, params={"includeTotalSize": "true"}).json()
    assert both["totalSize"] == 4 and both["hasMore"] is False
    # The traced run has a value for every field the example shows one for.
    traced = {**both, "workflows": both["workflows"][-1:]}
    assert missing_keys(traced, example("list-workflows")) == []
    assert [item["workflow"]["id"] for item in both["workflows"]] == list(reversed(others)) + [
        traced_run
    ]
    legacy = client.get("/api/workflows", headers=alice, params={"includeTotalSize": "true"})
    assert legacy.json() == both
    page = client.get("/api/workflow", headers=alice, params={"max": 2, "offset": 1}).json()
    assert [item["workflow"]["id"] for item in page["workflows"]] == [others[1], others[0]]
    assert page["hasMore"] is True and "totalSize" not in page  # not counted unless asked

    def ids(search: str) -> list[str]:
        response = client.get("/api/workflow", headers=alice, params={"search": search})
        assert response.status_code == 200, response.text
        return [item["workflow"]["id"] for item in response.json()["workflows"]]

    assert ids("status:succeeded") == [traced_run]
    assert ids("status:submitted") == list(reversed(others))
    assert ids("prickly") == [traced_run]
    assert ids("PRICK*BRENNER") == [traced_run]
    assert ids("runName:prickly_brenner status:succeeded") == [traced_run]
    assert ids(f"workflowId:{others[0]}") == [others[0]]
    assert ids("after:2000-01-01") == list(reversed(others)) + [traced_run]
    assert ids("before:2000-01") == []
    assert ids("userName:alice") == list(reversed(others)) + [traced_run]
    for params in ({"offset": 2**70}, {"max": 2**40}, {"offset": -1}):
        response = client.get("/api/workflow", headers=alice, params=params)
        assert response.status_code == 400, params
        assert response.json()["message"].split(":")[0] in ("offset", "max")
    for bad in ("status:sleeping", "colour:blue", "after:yesterday"):
        response = client.get("/api/workflow", headers=alice, params={"search": bad})
        assert response.status_code == 400 and response.json()["message"].startswith("search:")


def test_cancel_through_tower(client, alice):
    run_id = submit(client, alice)
    response = client.post(f"/api/workflow/{run_id}/cancel", headers=alice, json={})
    assert response.status_code == 204
    assert client.get(f"{WES}/runs/{run_id}/status", headers=alice).json()["state"] == "CANCELED"
    again = client.post(f"/api/workflow/{run_id}/cancel", headers=alice)
    assert again.status_code == 400
    assert again.json() == {
        "message": f"Invalid cancel request for workflow id: {run_id}; status: CANCELLED"
    }


def test_another_users_workflow_is_hidden(client, alice, bob, traced_run):
    for path in (
        "",
        "/progress",
        "/tasks",
        "/task/1",
        "/tasks/1",
        "/metrics",
        "/launch",
        "/log",
        "/log/1",
        "/download",
        "/download/1",
    ):
        response = client.get(f"/api/workflow/{traced_run}{path}", headers=bob)
        assert response.status_code == 404, path
        assert set(response.json()) == {"message"}
    assert client.post(f"/api/workflow/{traced_run}/cancel", headers=bob).status_code == 404
    assert client.delete(f"/api/workflow/{traced_run}?force=true", headers=bob).status_code == 404
    assert client.get("/api/workflow", headers=bob).json()["workflows"] == []


def test_tower_status_follows_the_wes_state(client, alice, traced_run):
    status = client.get(f"{WES}/runs/{traced_run}/status", headers=alice).json()["state"]
    described = client.get(f"/api/workflow/{traced_run}", headers=alice).json()
    assert (status, described["workflow"]["status"]) == ("COMPLETE", "SUCCEEDED")


def _exists(db, run_id: str) -> bool:
    from wes_gateway.domain.models import Run, Task

    with db.session() as session:
        return (
            session.get(Run, run_id) is not None
            or session.execute(Task.__table__.select().where(Task.run_id == run_id)).first()
            is not None
        )


@pytest.fixture
def tasks_sent(monkeypatch):
    """The tasks the API sent to the workers, as (task name, run id)."""
    from wes_gateway.http import dispatch

    sent: list[tuple[str, str]] = []
    real = dispatch.send

    def record(app, task, subject_id, **options):
        sent.append((task, subject_id))
        return real(app, task, subject_id, **options)

    monkeypatch.setattr(dispatch, "send", record)
    return sent


@pytest.fixture
def worker(db, settings):
    """What the workers' tasks call, on the suite's database and data folder."""
    from workers import execution

    return execution.Executor(db=db, settings=settings)


def _work_tree(folder: Path, files: int = 2000) -> None:
    """A run folder with a work tree of many small task folders, as a real run leaves."""
    for number in range(files):
        task = folder / "launch" / "work" / f"{number % 256:02x}" / f"{number:030x}"
        task.mkdir(parents=True, exist_ok=True)
        (task / ".command.out").write_text("out\n")


def _files_in(folder: Path) -> int:
    return sum(1 for path in folder.rglob("*") if path.is_file())


def _hidden_everywhere(client, alice, run_id: str) -> None:
    assert client.get(f"/api/workflow/{run_id}", headers=alice).status_code == 404
    assert client.get(f"{WES}/runs/{run_id}", headers=alice).status_code == 404
    assert run_id not in {
        entry["workflow"]["id"]
        for entry in client.get("/api/workflow", headers=alice).json()["workflows"]
    }
    assert run_id not in {
        run["run_id"] for run in client.get(f"{WES}/runs", headers=alice).json()["runs"]
    }


def test_delete_a_finished_workflow_removes_it_everywhere(
    client, alice, db, traced_run, run_dir, tasks_sent, worker
):
    from wes_gateway.infra.queue import PURGE_RUN
    from workers import execution

    folder = run_dir(traced_run)
    _work_tree(folder)
    files = _files_in(folder)
    response = client.delete(f"/api/workflow/{traced_run}", headers=alice)
    assert response.status_code == 204
    _hidden_everywhere(client, alice, traced_run)
    again = client.delete(f"/api/workflow/{traced_run}", headers=alice)
    assert again.status_code == 404 and set(again.json()) == {"message"}
    # The request only marked it: its folder is removed by a worker, not in the request.
    assert _files_in(folder) == files and _exists(db, traced_run)
    assert tasks_sent == [(PURGE_RUN, traced_run)]
    execution.purge_deleted(worker, traced_run)  # what the task sent does
    assert not folder.exists()
    assert not _exists(db, traced_run)


def test_delete_an_active_workflow_needs_force(client, alice, db, tasks_sent, worker):
    from wes_gateway.infra.queue import PURGE_RUN
    from workers import execution

    run_id = submit(client, alice)
    response = client.delete(f"/api/workflow/{run_id}", headers=alice)
    assert response.status_code == 400
    assert "force=true" in response.json()["message"] and "QUEUED" in response.json()["message"]
    assert client.get(f"{WES}/runs/{run_id}/status", headers=alice).json()["state"] == "QUEUED"
    # Forced, a queued run (no job yet) is cancelled and goes at once.
    tasks_sent.clear()
    assert client.delete(f"/api/workflow/{run_id}?force=true", headers=alice).status_code == 204
    assert client.get(f"/api/workflow/{run_id}", headers=alice).status_code == 404
    assert tasks_sent == [(PURGE_RUN, run_id)]
    execution.purge_deleted(worker, run_id)
    assert not _exists(db, run_id)


def test_force_deleting_a_running_workflow_hides_it_and_stops_its_job(
    client, alice, db, tasks_sent, worker
):
    from wes_gateway.domain.models import Run
    from wes_gateway.infra.queue import CANCEL_RUN
    from workers import execution

    run_id = submit(client, alice)
    with db.session() as session:
        transition(session, run_id, State.INITIALIZING, "worker", allowed_from={State.QUEUED})
        session.get(Run, run_id).backend_handle = "job-1"
        transition(session, run_id, State.RUNNING, "started")
    tasks_sent.clear()
    assert client.delete(f"/api/workflow/{run_id}?force=true", headers=alice).status_code == 204
    assert client.get(f"/api/workflow/{run_id}", headers=alice).status_code == 404
    assert client.get(f"{WES}/runs/{run_id}/status", headers=alice).status_code == 404
    assert client.get(f"{WES}/service-info").json()["system_state_counts"]["CANCELING"] == 0
    assert tasks_sent == [(CANCEL_RUN, run_id)]  # stop its job first
    execution.purge_deleted(worker, run_id)  # a purge now would be too early: nothing done
    with db.session() as session:
        run = session.get(Run, run_id)  # kept until the worker has stopped the job
        assert run.state is State.CANCELING and run.deleted_at is not None


def test_delete_many_names_what_could_not_be_deleted(
    client, alice, bob, db, traced_run, run_dir, tasks_sent, worker
):
    from wes_gateway.infra.queue import PURGE_RUN
    from workers import execution

    queued = submit(client, alice)
    theirs = submit(client, bob)
    tasks_sent.clear()
    for run_id in (traced_run, queued, theirs):
        _work_tree(run_dir(run_id), files=300)
    response = client.post(
        "/api/workflow/delete",
        headers=alice,
        json={"workflowIds": [traced_run, queued, theirs, "nosuchworkflow"]},
    )
    assert response.status_code == 200
    assert response.json() == {"failedWorkflowIds": [queued, theirs, "nosuchworkflow"]}
    _hidden_everywhere(client, alice, traced_run)
    assert run_dir(traced_run).is_dir() and tasks_sent == [(PURGE_RUN, traced_run)]
    forced = client.post(
        "/api/workflow/delete?force=true", headers=alice, json={"workflowIds": [queued, theirs]}
    )
    assert forced.json() == {"failedWorkflowIds": [theirs]}
    _hidden_everywhere(client, alice, queued)
    assert _files_in(run_dir(queued)) == 300 + 1  # its attachment, as it was
    assert tasks_sent == [(PURGE_RUN, traced_run), (PURGE_RUN, queued)]
    for _, run_id in tasks_sent:
        execution.purge_deleted(worker, run_id)
    assert not _exists(db, traced_run) and not _exists(db, queued) and _exists(db, theirs)
    assert not run_dir(traced_run).exists() and not run_dir(queued).exists()
    assert _files_in(run_dir(theirs)) == 301
    bad = client.post("/api/workflow/delete", headers=alice, json={"ids": [queued]})
    assert bad.status_code == 400 and "workflowIds" in bad.json()["message"]


def test_a_run_scoped_token_cannot_delete_its_run(client, alice, db):
    run_id = submit(client, alice)
    response = client.delete(f"/api/workflow/{run_id}?force=true", headers=run_token(db, run_id))
    assert response.status_code == 400
    assert _exists(db, run_id)


def test_tasks_filtered_by_process_and_status(client, alice, db):
    from wes_gateway.domain.models import Task

    run_id = submit(client, alice)
    with db.session() as session:
        for number, process, status in [
            (1, "NFCORE_DEMO:FASTQC", "COMPLETED"),
            (2, "NFCORE_DEMO:FASTQC", "FAILED"),
            (3, "NFCORE_DEMO:MULTIQC", "RUNNING"),
            (4, "NFCORE_DEMO:MULTIQC_2", "COMPLETED"),
        ]:
            session.add(
                Task(
                    run_id=run_id,
                    task_id=number,
                    name=f"{process} ({number})",
                    process=process,
                    status=status,
                    data={},
                )
            )

    def ids(search: str) -> list[int]:
        response = client.get(
            f"/api/workflow/{run_id}/tasks", headers=alice, params={"search": search}
        )
        assert response.status_code == 200, response.text
        return [task["task"]["taskId"] for task in response.json()["tasks"]]

    assert ids("process:NFCORE_DEMO:FASTQC") == [1, 2]
    assert ids("process:NFCORE_DEMO:MULTIQC*") == [3, 4]
    assert ids("status:completed,running") == [1, 3, 4]
    assert ids("process:NFCORE_DEMO:FASTQC status:FAILED") == [2]
    assert ids("NFCORE_DEMO:MULTIQC (") == [3]  # a name prefix, colons and all
    assert ids("NFCORE_DEMO:MULTIQC_") == [4]  # "_" is a character, not a wildcard
    bad = client.get(f"/api/workflow/{run_id}/tasks", headers=alice, params={"search": "status:x"})
    assert bad.status_code == 400 and "status" in bad.json()["message"]


def test_user_info_names_the_caller(client, alice, admin):
    mine = client.get("/api/user-info", headers=alice).json()["user"]
    assert mine["userName"] == "alice" and mine["admin"] is False
    assert client.get("/api/user-info", headers=admin).json()["user"]["admin"] is True
    assert client.get("/api/user-info").status_code == 401


def test_the_list_carries_each_run_s_wes_state(client, alice, traced_run):
    queued = submit(client, alice)
    states = {
        item["workflow"]["id"]: item["wesState"]
        for item in client.get("/api/workflow", headers=alice).json()["workflows"]
    }
    assert states == {queued: "QUEUED", traced_run: "COMPLETE"}


# --- paging a long list: by offset, by cursor, and the total -------------------------


def _set_states(db, run_ids: list[str], state: State) -> None:
    from sqlalchemy import update

    from wes_gateway.domain.models import Run

    with db.session() as session:
        session.execute(update(Run).where(Run.id.in_(run_ids)).values(state=state))
        session.commit()


# Seqera's schema types each workflow param as an object; plain values are checked elsewhere.
NO_PARAMS = {"workflow_params": "{}"}


def _listed(client, headers, **params) -> dict:
    response = client.get("/api/workflow", headers=headers, params=params)
    assert response.status_code == 200, response.text
    seqera_oracle.check("/workflow", "get", 200, response.json())
    return response.json()


def _ids(body: dict) -> list[str]:
    return [item["workflow"]["id"] for item in body["workflows"]]


@pytest.fixture
def mixed_runs(client, alice, bob, db):
    """Twenty of alice's runs (newest last) in three states, tagged by parity; one of
    bob's. Returns alice's, newest first, and the expected matches of each search."""
    made = [
        submit(client, alice, tags=json.dumps({"parity": "odd" if n % 2 else "even"}), **NO_PARAMS)
        for n in range(20)
    ]
    submit(client, bob, tags=json.dumps({"parity": "odd"}), **NO_PARAMS)
    _set_states(db, made[0::3], State.RUNNING)
    _set_states(db, made[1::3], State.COMPLETE)
    newest = list(reversed(made))
    running = [r for r in newest if made.index(r) % 3 == 0]
    done = [r for r in newest if made.index(r) % 3 == 1]
    odd = [r for r in newest if made.index(r) % 2]
    return {
        "": newest,
        "status:running": running,
        "status:running status:succeeded": [r for r in newest if r in running or r in done],
        "tag:parity=odd": odd,
        "tag:parity=odd status:succeeded": [r for r in odd if r in done],
        "tag:parity": newest,
    }


@pytest.mark.parametrize(
    "search",
    [
        "",
        "status:running",
        "status:running status:succeeded",
        "tag:parity=odd",
        "tag:parity=odd status:succeeded",
        "tag:parity",
    ],
)
def test_offset_and_cursor_pages_hold_exactly_the_matches_in_order(
    client, alice, mixed_runs, search, monkeypatch
):
    from wes_gateway.domain import runs

    monkeypatch.setattr(runs, "COUNT_STEP", 2)  # the total is counted over several steps
    expected = mixed_runs[search]
    params = {"search": search} if search else {}
    by_offset, offset = [], 0
    while True:
        body = _listed(client, alice, max=3, offset=offset, includeTotalSize="true", **params)
        assert body["totalSize"] == len(expected)
        by_offset += _ids(body)
        offset += 3
        assert body["hasMore"] is (offset < len(expected))
        if not body["hasMore"]:
            assert "nextCursor" not in body
            break
    assert by_offset == expected
    # An offset counts on from the cursor.
    first = _listed(client, alice, max=2, **params)
    after = _listed(client, alice, max=2, offset=1, cursor=first["nextCursor"], **params)
    assert _ids(after) == expected[3:5]
    by_cursor, cursor = [], None
    while True:
        query = {"max": 3, **params, **({"cursor": cursor} if cursor else {})}
        body = _listed(client, alice, **query)
        by_cursor += _ids(body)
        cursor = body.get("nextCursor")
        assert (cursor is not None) is body["hasMore"]
        if not cursor:
            break
        submit(client, alice, **NO_PARAMS)  # new runs sort before the cursor: nothing shifts
    assert by_cursor == expected


def test_the_total_is_counted_up_to_a_bound_past_the_page(client, alice, monkeypatch):
    from wes_gateway.domain import runs

    made = list(reversed([submit(client, alice, **NO_PARAMS) for _ in range(12)]))
    monkeypatch.setattr(runs, "TOTAL_AHEAD", 4)
    monkeypatch.setattr(runs, "COUNT_STEP", 3)
    body = _listed(client, alice, max=3, offset=2, includeTotalSize="true")
    assert _ids(body) == made[2:5] and body["hasMore"] is True
    assert body["totalSize"] == 2 + 3 + 4  # at least that many; hasMore stays exact
    last = _listed(client, alice, max=3, offset=9, includeTotalSize="true")
    assert _ids(last) == made[9:] and last["totalSize"] == 12 and last["hasMore"] is False


def test_a_cursor_belongs_to_its_list(client, alice, bob):
    for _ in range(3):
        submit(client, alice, **NO_PARAMS)
        submit(client, bob, **NO_PARAMS)
    cursor = _listed(client, alice, max=1)["nextCursor"]
    for who, params in (
        (bob, {"cursor": cursor}),
        (alice, {"cursor": cursor, "search": "status:running"}),
        (alice, {"cursor": "not-a-cursor"}),
    ):
        response = client.get("/api/workflow", headers=who, params={"max": 1, **params})
        assert response.status_code == 400, response.text
        assert response.json()["message"].startswith("cursor:")
