"""GET /runs: keyset pages, newest first, stable while runs keep arriving; forged tokens."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from tests.conftest import WES, submit
from tests.http.test_tenancy import create_org, create_workspace


def _page(client, headers, **params):
    response = client.get(f"{WES}/runs", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_empty_list_has_an_empty_token(client, alice):
    assert _page(client, alice) == {"runs": [], "next_page_token": ""}


def test_page_through_while_runs_arrive(client, alice):
    old = [submit(client, alice) for _ in range(250)]
    newest_first = list(reversed(old))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params = {"page_size": 7}
        if token:
            params["page_token"] = token
        body = _page(client, alice, **params)
        assert len(body["runs"]) <= 7
        for item in body["runs"]:
            assert set(item) >= {"run_id", "state", "tags"}
            assert item["tags"] == {}
        seen.extend(item["run_id"] for item in body["runs"])
        pages += 1
        # New runs arrive between pages; they sort before the cursor and never appear.
        submit(client, alice)
        submit(client, alice)
        token = body["next_page_token"]
        if not token:
            break
    assert seen == newest_first
    assert pages == 36


def test_default_and_maximum_page_sizes(client, alice, db):
    from wes_gateway.domain import runs

    for _ in range(25):
        submit(client, alice)
    assert len(_page(client, alice)["runs"]) == runs.DEFAULT_PAGE_SIZE
    body = _page(client, alice, page_size=10**9)
    assert len(body["runs"]) == 25 and body["next_page_token"] == ""
    assert runs.page_size_or_default(10**9) == runs.MAX_PAGE_SIZE


def test_summary_fields(client, alice):
    run_id = submit(client, alice, tags='{"sample": "S1"}')
    (item,) = _page(client, alice)["runs"]
    assert item == {"run_id": run_id, "state": "QUEUED", "tags": {"sample": "S1"}}


@pytest.mark.parametrize("page_size", [0, -1])
def test_bad_page_size(client, alice, page_size):
    response = client.get(f"{WES}/runs", headers=alice, params={"page_size": page_size})
    assert response.status_code == 400
    assert response.json()["msg"].startswith("page_size:")


def test_forged_and_foreign_tokens_are_refused(client, alice, bob):
    for _ in range(3):
        submit(client, alice)
    token = _page(client, alice, page_size=1)["next_page_token"]
    assert token
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-3] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in ["garbage", "!!!", tampered, token[:-2], "e30", "A" * 500]:
        response = client.get(f"{WES}/runs", headers=alice, params={"page_token": bad})
        assert response.status_code == 400, bad
        assert response.json()["msg"].startswith("page_token:")
    # Alice's cursor is no use to Bob.
    response = client.get(f"{WES}/runs", headers=bob, params={"page_token": token})
    assert response.status_code == 400
    # And still good for Alice.
    assert len(_page(client, alice, page_size=1, page_token=token)["runs"]) == 1


# --- every filter's page is read from an index, newest first --------------------------


@contextmanager
def _statements(db) -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs on runs that the database is sent meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "ORDER BY" in statement.upper():
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def _plan(db, statement: str, parameters: Any) -> str:
    """The plan of ``statement``. PostgreSQL is told to avoid sorting and scanning where it
    can (its tables here are tiny, which makes both the cheapest plan): a plan that still
    has a sort has no index to serve the order."""
    with db.engine.connect() as connection:
        raw = connection.connection.dbapi_connection.cursor()
        if db.engine.dialect.name == "sqlite":
            raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(str(row[-1]) for row in raw.fetchall())
        raw.execute("SET enable_sort = off")
        raw.execute("SET enable_seqscan = off")
        raw.execute("EXPLAIN " + statement, parameters)
        plan = "\n".join(row[0] for row in raw.fetchall())
        connection.rollback()
        return plan


# Each filter and the index that must drive its pages (the first the plan reads: the
# outer loop), in the personal workspace and in a workspace. A tag key alone is checked
# run by run in the scope's order (run_tags' primary key), as are the filters after the
# one that drives.
# (The state index alone serves a state newest first too; on these tiny tables a planner
# may take it.)
SCOPE = {
    "personal": {"ix_runs_owner_workspace_created"},
    "workspace": {"ix_runs_workspace_created"},
}
BY_STATE = {
    "personal": {"ix_runs_owner_workspace_state_created", "ix_runs_state_created"},
    "workspace": {"ix_runs_workspace_state_created", "ix_runs_state_created"},
}
BY_TAG = {
    "personal": {"ix_run_tags_key_value_created"},
    "workspace": {"ix_run_tags_key_value_created"},
}
FILTERS = [
    ({}, SCOPE),
    ({"state": "RUNNING"}, BY_STATE),
    ({"state": ["RUNNING", "QUEUED"]}, BY_STATE),
    ({"tag_key": "project", "tag_value": "p1"}, BY_TAG),
    ({"tag_key": "project"}, SCOPE),
    # Without statistics SQLite may take the workspaces' index for the personal window.
    (
        {"created_after": "2020-01-01T00:00:00Z", "created_before": "2100-01-01T00:00:00Z"},
        {**SCOPE, "personal": SCOPE["personal"] | {"ix_runs_workspace_created"}},
    ),
    ({"workflow_type": "NFL"}, SCOPE),
    ({"state": "QUEUED", "tag_key": "project", "tag_value": "p1"}, BY_TAG),
]


@pytest.mark.parametrize("scope", ["personal", "workspace"])
@pytest.mark.parametrize(("params", "drives"), FILTERS, ids=[str(n) for n in range(len(FILTERS))])
def test_every_filter_reads_its_page_newest_first_from_an_index(
    client, alice, db, params, drives, scope
):
    """The list's queries (first page and a page by token) sort nothing and (SQLite,
    whose choice does not depend on statistics) start from the index that serves their
    filter, read in (created_at, id) order from the newest
    end, so a page costs the same however many runs there are and however few match."""
    headers, extra, fields = alice, {}, {}
    if scope == "workspace":
        ws = create_workspace(client, alice, create_org(client, alice))
        extra = {"workspace_id": ws}
        fields = {"workflow_engine_parameters": json.dumps({"workspaceId": str(ws)})}
    for n in range(4):
        submit(client, headers, tags=json.dumps({"project": f"p{n % 2}"}), **fields)
    with _statements(db) as seen:
        first = _page(client, headers, page_size=1, **params, **extra)
        if first["next_page_token"]:
            token = first["next_page_token"]
            _page(client, headers, page_size=1, page_token=token, **params, **extra)
    lists = [(s, p) for s, p in seen if "runs" in s and "LIMIT" in s.upper()]
    assert lists, seen
    for statement, parameters in lists:
        plan = _plan(db, statement, parameters)
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
        assert "Seq Scan" not in plan, plan
        if db.engine.dialect.name != "sqlite":
            continue  # PostgreSQL picks among indexes by statistics, meaningless here
        first_index = re.search(r"\b(ix_\w+|\w+_pkey|sqlite_autoindex_\w+)", plan)
        assert first_index and first_index.group(1) in drives[scope], plan
