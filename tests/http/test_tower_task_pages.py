"""The tasks list of a run at any size: every page, sort and search gives what sorting the
whole run would, the total comes with it, and on SQLite each page is read through an
index of the run's tasks (no sort of the whole run, no scan of its table)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from tests.conftest import submit
from tests.domain.test_trace import run_token

PROCESSES = ("NFCORE:ALIGN", "NFCORE:SORT", "NFCORE:SORT_BAM")
STATUSES = ("NEW", "SUBMITTED", "RUNNING", "COMPLETED", "FAILED", "CACHED")
T0 = datetime(2026, 5, 6, 12, 0, tzinfo=UTC)
SORTS = {
    "taskId": "taskId",
    "name": "name",
    "process": "process",
    "status": "status",
    "submit": "submit",
    "start": "start",
    "complete": "complete",
    "exitStatus": "exitStatus",
}


def _time(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _records(ids: list[int], seed: int) -> list[dict]:
    chance = random.Random(seed)
    records = []
    for task_id in ids:
        process = chance.choice(PROCESSES)
        begun = chance.randrange(500)
        records.append(
            {
                "taskId": task_id,
                "name": f"{process} ({chance.randrange(40)})",
                "process": process,
                "status": chance.choice(STATUSES),
                "exit": chance.choice([0, 1, 137]),
                "submit": _time(begun),
                "start": _time(begun + chance.randrange(1, 9)),
                "complete": _time(begun + chance.randrange(10, 90)),
            }
        )
    return records


def _traced(client, alice, db, ids: list[int], seed: int) -> tuple[str, list[dict]]:
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
    records = _records(ids, seed)
    for start in range(0, len(records), 100):
        response = client.put(
            f"/api/trace/{run_id}/progress",
            headers=headers,
            json={"tasks": records[start : start + 100]},
        )
        assert response.status_code == 200, response.text
    return run_id, records


def _expected(records: list[dict], sort: str, descending: bool, keep) -> list[int]:
    key = {"taskId": "taskId", "exitStatus": "exit"}.get(sort, sort)
    chosen = [record for record in records if keep(record)]
    chosen.sort(key=lambda record: (record[key], record["taskId"]), reverse=descending)
    return [record["taskId"] for record in chosen]


def _page(client, headers, run_id: str, **params) -> tuple[list[int], int]:
    response = client.get(f"/api/workflow/{run_id}/tasks", headers=headers, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return [item["task"]["taskId"] for item in body["tasks"]], body["total"]


SEARCHES = {
    "": lambda record: True,
    "status:COMPLETED,FAILED": lambda record: record["status"] in ("COMPLETED", "FAILED"),
    "process:NFCORE:SORT": lambda record: record["process"] == "NFCORE:SORT",
    "process:NFCORE:SORT* status:RUNNING": lambda record: (
        record["process"].startswith("NFCORE:SORT") and record["status"] == "RUNNING"
    ),
    "NFCORE:ALIGN (1": lambda record: record["name"].startswith("NFCORE:ALIGN (1"),
}


@pytest.mark.parametrize("ids", ["dense", "sparse"])
def test_every_page_sort_and_search_is_the_whole_run_sorted(client, alice, db, ids):
    """Task ids 1..N (as Nextflow numbers them), and ids with gaps (a run resumed, or
    records lost): the same pages either way."""
    numbers = list(range(1, 251)) if ids == "dense" else random.Random(3).sample(range(1, 900), 250)
    run_id, records = _traced(client, alice, db, numbers, seed=len(ids))
    for search, keep in SEARCHES.items():
        for sort in SORTS:
            for direction in ("asc", "desc"):
                expected = _expected(records, sort, direction == "desc", keep)
                for offset in (0, 37, len(expected) - 5, len(expected) + 3):
                    offset = max(offset, 0)
                    got, total = _page(
                        client,
                        alice,
                        run_id,
                        max=20,
                        offset=offset,
                        sortBy=sort,
                        sortDir=direction,
                        search=search,
                    )
                    assert total == len(expected), (search, sort)
                    assert got == expected[offset : offset + 20], (search, sort, direction, offset)


def test_the_total_follows_the_tasks_as_they_change(client, alice, db):
    run_id, records = _traced(client, alice, db, list(range(1, 31)), seed=5)
    running = sum(record["status"] == "RUNNING" for record in records)
    assert _page(client, alice, run_id, search="status:RUNNING")[1] == running
    headers = run_token(db, run_id)
    finished = [
        {**record, "status": "COMPLETED"} for record in records if record["status"] == "RUNNING"
    ]
    client.put(f"/api/trace/{run_id}/progress", headers=headers, json={"tasks": finished})
    assert _page(client, alice, run_id, search="status:RUNNING") == ([], 0)
    completed = sum(record["status"] == "COMPLETED" for record in records) + running
    assert _page(client, alice, run_id, search="status:COMPLETED")[1] == completed
    assert _page(client, alice, run_id)[1] == 30


@pytest.mark.parametrize(
    "params",
    [
        {"offset": 150},
        {"offset": 150, "sortDir": "desc"},
        *({"sortBy": sort, "sortDir": "desc", "offset": 40} for sort in SORTS if sort != "taskId"),
        {"search": "process:NFCORE:SORT", "offset": 40},
        {"search": "status:RUNNING", "offset": 10},
        {"search": "process:NFCORE:SORT* status:FAILED"},
        {"search": "NFCORE:ALIGN (2"},
    ],
)
def test_each_page_is_read_through_an_index(client, alice, db, params):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the plans checked are SQLite's")
    run_id, _ = _traced(client, alice, db, list(range(1, 201)), seed=9)
    statements: list[tuple[str, tuple]] = []

    def seen(connection, cursor, statement, parameters, context, executemany):
        if "FROM tasks" in statement and not executemany:
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        _page(client, alice, run_id, max=20, **params)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert statements
    with db.engine.connect() as connection:
        for statement, parameters in statements:
            plan = " / ".join(
                row[-1]
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
            if "name" in params.get("search", "") or "(" in params.get("search", ""):
                # a name prefix seeks its matches, which are then put in order
                assert "ix_tasks_run_name (run_id=? AND name>? AND name<?)" in plan, plan
                continue
            assert "TEMP B-TREE" not in plan, (statement, plan)
            assert "SCAN tasks" not in plan or "USING" in plan, (statement, plan)
            assert "INDEX" in plan, (statement, plan)
