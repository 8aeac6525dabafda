"""A run's WES ``outputs``: the files it published under its ``params.outdir``, listed by
a worker when its head job ends (real head jobs: the Nextflow stand-in, which publishes
as ``publishDir params.outdir`` does), and one of them streamed by
``GET /runs/{run_id}/outputs/{path}``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.cloud import STALE_AFTER
from tests.conftest import WES
from tests.conftest import submit as submit_over_wes
from tests.live import STANDIN
from wes_gateway.domain.models import Run
from workers import execution


@pytest.fixture
def executor(db, settings):
    worker_settings = settings.model_copy(
        update={
            "nextflow": str(STANDIN),
            "submit_stale_after": STALE_AFTER,
            "requeue_after": 0.0,
            "max_outputs": 5,
        }
    )
    return execution.Executor(db=db, settings=worker_settings)


def run_to_the_end(client, headers, executor, **params) -> str:
    """A WES run with these params, submitted and polled until its head job has ended."""
    params = {"standin_task_seconds": 0, "standin_tasks": 2, **params}
    run_id = submit_over_wes(client, headers, workflow_params=json.dumps(params))
    execution.submit(executor, run_id)
    deadline = time.monotonic() + 30
    while execution.poll_active(executor):
        assert time.monotonic() < deadline, "the head job did not end"
        time.sleep(0.1)
    return run_id


def run_log(client, headers, run_id: str) -> dict:
    response = client.get(f"{WES}/runs/{run_id}", headers=headers)  # checked by the oracle
    assert response.status_code == 200, response.text
    return response.json()


def test_a_local_run_lists_what_it_published_with_sizes_and_locations(
    client, alice, executor, run_dir
):
    run_id = run_to_the_end(client, alice, executor, outdir="results")
    body = run_log(client, alice, run_id)
    assert body["state"] == "COMPLETE"
    outdir = (run_dir(run_id) / "launch" / "results").resolve()
    assert body["outputs"] == {
        f"standin/standin_{n}.txt": {
            "location": str(outdir / "standin" / f"standin_{n}.txt"),
            "size": len(f"published by task {n}\n"),
        }
        for n in (1, 2)
    }
    assert "outputs_truncated" not in body


def test_an_absolute_outdir_and_nextflow_s_symlink_mode(client, alice, executor, tmp_path):
    """Published as links into the run's work folder (Nextflow's default mode): listed
    where they were published, with the size of the file they lead to."""
    outdir = tmp_path / "published"
    run_id = run_to_the_end(client, alice, executor, outdir=str(outdir), publish_dir_mode="symlink")
    outputs = run_log(client, alice, run_id)["outputs"]
    assert sorted(outputs) == ["standin/standin_1.txt", "standin/standin_2.txt"]
    entry = outputs["standin/standin_1.txt"]
    assert entry["location"] == str(outdir.resolve() / "standin" / "standin_1.txt")
    assert Path(entry["location"]).is_symlink()
    assert entry["size"] == len("published by task 1\n")


def test_a_run_without_outdir_has_no_outputs(client, alice, executor, db):
    run_id = run_to_the_end(client, alice, executor)
    assert run_log(client, alice, run_id)["outputs"] == {}
    with db.session() as session:
        assert session.get(Run, run_id).outputs_truncated is False  # looked at, once


def test_the_list_is_bounded_and_says_it_was_cut(client, alice, executor):
    run_id = run_to_the_end(client, alice, executor, outdir="results", standin_tasks=7)
    body = run_log(client, alice, run_id)
    assert len(body["outputs"]) == 5  # the executor's max_outputs
    assert sorted(body["outputs"]) == [f"standin/standin_{n}.txt" for n in (1, 2, 3, 4, 5)]
    assert body["outputs_truncated"] is True


def test_links_out_of_the_outdir_are_not_listed(client, alice, executor, tmp_path):
    """The outdir holds links to files of the host and of the service's data folder."""
    secret = tmp_path / "secret.txt"
    secret.write_text("not published")
    outdir = tmp_path / "published"
    (outdir / "inner").mkdir(parents=True)
    (outdir / "inner" / "kept.txt").write_text("kept")
    (outdir / "host-secret").symlink_to(secret)
    (outdir / "service").symlink_to(executor.settings.data_dir)
    (outdir / "database").symlink_to(executor.settings.data_dir / "wes-gateway.db")
    (outdir / "inner-link").symlink_to(outdir / "inner" / "kept.txt")
    run_id = run_to_the_end(client, alice, executor, outdir=str(outdir))
    outputs = run_log(client, alice, run_id)["outputs"]
    assert sorted(outputs) == [
        "inner-link",  # a link that stays inside the outdir
        "inner/kept.txt",
        "standin/standin_1.txt",
        "standin/standin_2.txt",
    ]
    assert outputs["inner-link"]["size"] == 4


def test_the_service_s_data_folder_is_never_listed(client, alice, executor):
    """An outdir in the data folder, outside the run's own folder (another run's)."""
    first = run_to_the_end(client, alice, executor, outdir="results")
    other = executor.settings.runs_dir / first
    run_id = run_to_the_end(client, alice, executor, outdir=str(other))
    assert run_log(client, alice, run_id)["outputs"] == {}
    # An outdir that holds the data folder: what the run published, nothing of the service's.
    outdir = executor.settings.data_dir.parent
    parent = run_to_the_end(client, alice, executor, outdir=str(outdir))
    assert (outdir / "data" / "wes-gateway.db").exists() or executor.settings.database_url
    assert sorted(run_log(client, alice, parent)["outputs"]) == [
        "standin/standin_1.txt",
        "standin/standin_2.txt",
    ]


def test_nextflow_s_work_and_cache_folders_and_the_run_s_own_files_are_never_listed(
    client, alice, executor
):
    """An outdir of the launch folder itself: what is there (the attachment, the published
    files), not the task folders (their scripts and environments) nor Nextflow's cache;
    an outdir of the run's folder: not its files (params, the console, its secrets while
    it ran)."""
    launch = run_to_the_end(client, alice, executor, outdir=".")
    assert sorted(run_log(client, alice, launch)["outputs"]) == [
        "note.txt",  # the attachment tests.conftest.submit sends
        "standin/standin_1.txt",
        "standin/standin_2.txt",
    ]
    own = run_to_the_end(client, alice, executor, outdir="..")
    assert run_log(client, alice, own)["outputs"] == {}
    work = run_to_the_end(client, alice, executor, outdir="work")
    assert run_log(client, alice, work)["outputs"] == {}


# -- GET /runs/{run_id}/outputs/{path} -------------------------------------------------


@pytest.fixture
def finished(client, alice, executor) -> str:
    return run_to_the_end(client, alice, executor, outdir="results")


def test_a_listed_output_is_streamed(client, alice, finished):
    response = client.get(f"{WES}/runs/{finished}/outputs/standin/standin_2.txt", headers=alice)
    assert response.status_code == 200, response.text
    assert response.content == b"published by task 2\n"
    assert response.headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize(
    "path",
    [
        "..%2F..%2Fparams.json",
        "standin%2F..%2F..%2F..%2Fparams.json",
        "%2Fetc%2Fpasswd",
        "%2F%2E%2E%2Fparams.json",
        "%2F" + "x" * 10,
        "standin/%2E%2E/%2E%2E/%2E%2E/params.json",
        "standin//standin_1.txt",
        ".%2Fstandin/standin_1.txt",
    ],
)
def test_paths_that_lead_elsewhere_are_refused(client, alice, finished, path):
    response = client.get(f"{WES}/runs/{finished}/outputs/{path}", headers=alice)
    if path.startswith("%2F"):  # an empty first component: no route has it
        assert response.status_code == 404, (path, response.text)
        assert response.json()["msg"].startswith("no such path:"), response.text
    else:
        assert response.status_code == 400, (path, response.text)
        assert response.json()["msg"].startswith("path:"), response.text
    assert "root:" not in response.text and "published" not in response.text
    control = client.get(f"{WES}/runs/{finished}/outputs/standin/standin_1.txt", headers=alice)
    assert control.status_code == 200  # the route is there: the path was refused


@pytest.mark.parametrize("path", ["standin/standin_9.txt", "standin", "nf-{run}.txt"])
def test_a_path_not_listed_is_not_found(client, alice, finished, path):
    response = client.get(
        f"{WES}/runs/{finished}/outputs/{path.format(run=finished)}", headers=alice
    )
    assert response.status_code == 404, response.text
    assert "not an output of run" in response.json()["msg"]


def test_a_listed_file_swapped_for_a_link_out_is_not_served(
    client, alice, finished, run_dir, tmp_path
):
    published = run_dir(finished) / "launch" / "results" / "standin" / "standin_1.txt"
    secret = tmp_path / "secret.txt"
    secret.write_text("the host's")
    url = f"{WES}/runs/{finished}/outputs/standin/standin_1.txt"
    assert client.get(url, headers=alice).status_code == 200  # before
    published.unlink()
    published.symlink_to(secret)
    response = client.get(f"{WES}/runs/{finished}/outputs/standin/standin_1.txt", headers=alice)
    assert response.status_code == 404, response.text
    assert "the host's" not in response.text


def test_another_user_s_run_outputs_are_as_a_run_that_does_not_exist(client, alice, bob, finished):
    theirs = client.get(f"{WES}/runs/{finished}/outputs/standin/standin_1.txt", headers=bob)
    nobodys = client.get(f"{WES}/runs/{'x' * 14}/outputs/standin/standin_1.txt", headers=bob)
    assert theirs.status_code == nobodys.status_code == 404
    assert theirs.json()["msg"].replace(finished, "x" * 14) == nobodys.json()["msg"]
    assert b"published" not in theirs.content
    mine = client.get(f"{WES}/runs/{finished}/outputs/standin/standin_1.txt", headers=alice)
    assert mine.status_code == 200 and mine.text == "published by task 1\n"


def test_outputs_of_a_cloud_run_are_not_proxied(client, alice, db, finished):
    with db.session() as session:
        session.get(Run, finished).outputs = {
            "a.txt": {"location": "s3://bucket/results/a.txt", "size": 1}
        }
    response = client.get(f"{WES}/runs/{finished}/outputs/a.txt", headers=alice)
    assert response.status_code == 404, response.text
    assert "s3://bucket/results/a.txt" in response.json()["msg"]


def test_the_ro_crate_shows_the_outputs(client, alice, finished, run_dir):
    response = client.get(
        f"{WES}/runs/{finished}/ro-crate", headers={**alice, "Accept": "application/ld+json"}
    )
    assert response.status_code == 200, response.text
    graph = {entity["@id"]: entity for entity in response.json()["@graph"]}
    action = graph[f"#run-{finished}"]
    outdir = (run_dir(finished) / "launch" / "results").resolve()
    wanted = {f"file://{outdir}/standin/standin_{n}.txt" for n in (1, 2)}
    assert {item["@id"] for item in action["result"]} == wanted
    assert all(graph[name]["contentSize"] == str(len("published by task 1\n")) for name in wanted)
    assert not os.path.isabs(next(iter(wanted)))  # a URL, not a path
