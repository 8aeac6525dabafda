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
    return _reported(client, alice, db, _records(ids, seed))


def _reported(client, alice, db, records: list[dict]) -> tuple[str, list[dict]]:
    run_id = submit(client, alice)
    headers = run_token(db, run_id)
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


def _records_with_gaps(ids: list[int], seed: int) -> list[dict]:
    """Records as a run has them midway: many tasks not yet started or finished (no start,
    completion or exit status), some without a name, process or status, and so few
    distinct values that most sort keys tie."""
    chance = random.Random(seed)

    def some(*values):
        return chance.choice((None, *values))

    records = []
    for task_id in ids:
        process = some(*PROCESSES)
        records.append(
            {
                "taskId": task_id,
                "name": some(f"{process} (1)", f"{process} (2)"),
                "process": process,
                "status": some("RUNNING", "COMPLETED", "FAILED"),
                "exit": some(0, 1),
                "submit": some(_time(0), _time(1)),
                "start": some(_time(2), _time(3), _time(4)),
                "complete": some(_time(9), _time(10)),
            }
        )
    return records


def _sorted_with_nulls(
    records: list[dict], sort: str, descending: bool, keep, nulls_low: bool
) -> list[int]:
    """The ids of the records ``keep`` takes, sorted as the list sorts them: by the column,
    ties by task id the same way, NULLs where the database puts them (the lowest values
    on SQLite, the highest on PostgreSQL)."""
    key = {"taskId": "taskId", "exitStatus": "exit"}.get(sort, sort)

    def rank(record: dict) -> tuple:
        value = record[key]
        return ((value is None) != nulls_low, "" if value is None else value, record["taskId"])

    chosen = sorted((record for record in records if keep(record)), key=rank, reverse=descending)
    return [record["taskId"] for record in chosen]


SEARCHES_WITH_NULLS = {
    "": lambda record: True,
    "status:COMPLETED,FAILED": lambda record: record["status"] in ("COMPLETED", "FAILED"),
    "NFCORE:SORT": lambda record: (record["name"] or "").startswith("NFCORE:SORT"),
}


@pytest.mark.parametrize("search", list(SEARCHES_WITH_NULLS))
def test_pages_from_the_end_are_the_end_of_the_whole_run_sorted(client, alice, db, search):
    """Every page, the ones past the middle above all, with NULLs and ties in every
    column, in both directions: the same slices as sorting all the matching tasks."""
    numbers = random.Random(11).sample(range(1, 600), 150)
    run_id, records = _reported(client, alice, db, _records_with_gaps(numbers, seed=11))
    nulls_low = db.engine.dialect.name == "sqlite"
    size = 20
    for sort in SORTS:
        for direction in ("asc", "desc"):
            expected = _sorted_with_nulls(
                records, sort, direction == "desc", SEARCHES_WITH_NULLS[search], nulls_low
            )
            count = len(expected)
            assert count > 2 * size, "too few matches to read a page from the end"
            params = {"max": size, "sortBy": sort, "sortDir": direction, "search": search}
            middle_and_end = [count // 2 - 1, count // 2 + 1, count - size - 1, count - size]
            offsets = [*range(0, count, size), *middle_and_end, count - 1]
            pages = {
                offset: _page(client, alice, run_id, offset=offset, **params) for offset in offsets
            }
            assert {total for _, total in pages.values()} == {count}, (sort, direction)
            whole = [task for offset in range(0, count, size) for task in pages[offset][0]]
            assert whole == expected, (sort, direction)
            for offset in offsets:
                assert pages[offset][0] == expected[offset : offset + size], (
                    sort,
                    direction,
                    offset,
                )


def _page_statements(db, read) -> list[tuple[str, object]]:
    """The statements that read a page of tasks (in an order) as ``read()`` makes them,
    with their parameters; not the look-ups and counts beside them, whose cost does not
    depend on the page."""
    statements: list[tuple[str, object]] = []

    def seen(connection, cursor, statement, parameters, context, executemany):
        if "FROM tasks" in statement and "ORDER BY" in statement and not executemany:
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        read()
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert statements
    return statements


def _sqlite_work(db, statements) -> tuple[int, list[str]]:
    """SQLite virtual-machine steps to run the statements to their last row, and their
    plans."""
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    raw = db.engine.raw_connection()
    try:
        raw.driver_connection.set_progress_handler(step, 1)
        cursor = raw.cursor()
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            cursor.fetchall()
        raw.driver_connection.set_progress_handler(None, 1)
        plans = []
        for statement, parameters in statements:
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plans.append(" / ".join(row[-1] for row in cursor.fetchall()))
    finally:
        raw.close()
    return steps, plans


def _postgresql_work(db, statements) -> tuple[int, list[str]]:
    """The rows PostgreSQL's scans return to run the statements, and the node types of
    their plans. Sequential and bitmap scans are ruled out, as a table of a few hundred
    rows would be read whole however large a run grows: what is left is whether an index
    gives the order, and how far into it the statement reads."""
    rows = 0
    plans = []

    def walk(node: dict) -> list[str]:
        nonlocal rows
        if "Scan" in node["Node Type"]:
            rows += node["Actual Rows"] * node["Actual Loops"]
        kinds = [f"{node['Node Type']} {node.get('Index Name', '')}".strip()]
        for child in node.get("Plans", []):
            kinds += walk(child)
        return kinds

    with db.engine.connect() as connection:
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        for statement, parameters in statements:
            explained = connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
            ).scalar_one()
            plans.append(" / ".join(walk(explained[0]["Plan"])))
        connection.rollback()
    return rows, plans


@pytest.mark.parametrize(
    ("sort", "direction", "search"),
    [
        *((sort, direction, "") for sort in SORTS for direction in ("asc", "desc")),
        ("taskId", "asc", "process:NFCORE:SORT"),
        ("taskId", "desc", "process:NFCORE:SORT_BAM"),
    ],
)
def test_the_last_page_reads_no_more_of_an_index_than_the_first(
    client, alice, db, sort, direction, search
):
    """A page near the end of a sort is read back from the index's end: what reading it
    takes does not grow with how far into the list it is."""
    dialect = db.engine.dialect.name
    if dialect == "postgresql" and sort == "name":
        pytest.skip("PostgreSQL's name index serves prefixes (text_pattern_ops), not order")
    numbers = random.Random(9).sample(range(1, 900), 200)
    run_id, _ = _traced(client, alice, db, numbers, seed=9)
    params = {"max": 20, "sortBy": sort, "sortDir": direction, "search": search}
    total = _page(client, alice, run_id, **params)[1]
    assert total > 60
    first = _page_statements(db, lambda: _page(client, alice, run_id, offset=0, **params))
    last = _page_statements(db, lambda: _page(client, alice, run_id, offset=total - 15, **params))
    work = _sqlite_work if dialect == "sqlite" else _postgresql_work
    (first_work, _), (last_work, plans) = work(db, first), work(db, last)
    assert last_work <= 1.5 * first_work, (first_work, last_work, plans)
    for plan in plans:
        assert "TEMP B-TREE" not in plan and "Sort" not in plan.split(" / "), plan
        assert "INDEX" in plan or "Index" in plan, plan
