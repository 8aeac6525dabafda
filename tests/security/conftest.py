"""Runs with everything an endpoint could give away, for the security tests to attack:
user A's (alice's) above all."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import submit
from tests.domain.test_trace import run_token, sample
from wes_gateway.domain import tokens
from wes_gateway.domain.models import Run

TRACE = "/api/trace"
# The file every such run has published under its outdir (``results``), and listed.
OUTPUT = "standin/out.txt"


@dataclass(frozen=True)
class Victim:
    """A running run, with everything an endpoint could give away."""

    run_id: str
    task_ids: tuple[int, ...]
    run_dir: Path
    run_name: str
    trace_headers: dict[str, str]  # the run's own token, as its head job holds it


def private_text(run_id: str) -> str:
    """What every file of a run's folder holds, to recognise it anywhere it may leak."""
    return f"private to run {run_id}"


def task_folder(run_dir: Path, task_id: int) -> Path:
    return run_dir / "launch" / "work" / f"{task_id:02x}" / "cafe"


def start_traced_run(client, headers, db, run_dir_of) -> Victim:
    """A run of the user of ``headers``, begun by its head job, which reported two tasks
    whose folders, like the run's console and log, hold files; it has published one file
    under its outdir, listed in its outputs (as after an earlier attempt ended)."""
    run_id = submit(client, headers, workflow_params=json.dumps({"outdir": "results"}))
    with db.session() as session:
        owner = tokens.authenticate(session, headers["Authorization"].split()[1]).user_name
    trace_headers = run_token(db, run_id, user=owner)
    folder = run_dir_of(run_id)
    begin = sample("02-begin", run_id)
    response = client.put(f"{TRACE}/{run_id}/begin", headers=trace_headers, json=begin)
    assert response.status_code == 200, response.text
    progress = sample("03-progress", run_id)
    for record in progress["tasks"]:
        workdir = task_folder(folder, record["taskId"])
        workdir.mkdir(parents=True)
        for name in (".command.out", ".command.err", ".command.log"):
            (workdir / name).write_text(
                f"{name} of task {record['taskId']}, {private_text(run_id)}"
            )
        record["workdir"] = str(workdir)
    response = client.put(f"{TRACE}/{run_id}/progress", headers=trace_headers, json=progress)
    assert response.status_code == 200, response.text
    for name in (f"nf-{run_id}.txt", f"nf-{run_id}.log", f"timeline-{run_id}.html"):
        (folder / name).write_text(f"{name}, {private_text(run_id)}\n")
    published = folder / "launch" / "results" / OUTPUT
    published.parent.mkdir(parents=True)
    published.write_text(f"published, {private_text(run_id)}\n")
    with db.session() as session:
        run = session.get(Run, run_id)
        location = str(published.resolve())
        run.outputs = {OUTPUT: {"location": location, "size": published.stat().st_size}}
        run.outputs_truncated = False
    return Victim(
        run_id=run_id,
        task_ids=tuple(record["taskId"] for record in progress["tasks"]),
        run_dir=folder,
        run_name=begin["workflow"]["runName"],
        trace_headers=trace_headers,
    )


@pytest.fixture
def victim(client, alice, db, run_dir) -> Victim:
    """User A's running run."""
    return start_traced_run(client, alice, db, run_dir)
