"""Figure 9: reads as the number of runs grows. The runs are written in bulk straight into
the database (a million in three to four minutes here, where accepting them one by one through the
run service would take hours), as a long-used service holds them: five users, four
workspaces and the personal ones, mostly finished runs (some failed, cancelled, running
or queued), two tags each (one of ten projects, one of a thousand samples), five
pipelines, over a year. The same database grows from the smallest size to the largest;
at each size one client times, acting in one workspace (a fifth of the runs): the Tower
list with a search (free text and a status), the same with ``includeTotalSize``, the WES
list filtered by a tag, its first page and a page half-way through by page token,
service-info and /metrics, one request after another on one kept-alive connection, in
three rounds, keeping each read's round with the lowest median (the machine is shared).
"""

from __future__ import annotations

import dataclasses
import random
import time
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import event, insert, select

from bench.measure import median, percentile, request_times
from bench.results import Figure, Report
from bench.server import WES, fresh_folder, running_gateway, throwaway_database
from wes_gateway.domain import runs, tokens
from wes_gateway.domain.ids import new_run_id
from wes_gateway.domain.models import Run, RunTag, User
from wes_gateway.domain.pagination import encode_page_token
from wes_gateway.domain.states import State
from wes_gateway.infra.db import Database

TARGET = 1.3  # largest ÷ smallest
PAGE = 50
ROUNDS = 3  # one in the quick mode
PIPELINES = [
    "nf-core/rnaseq",
    "nf-core/sarek",
    "nf-core/demo",
    "nf-core/atacseq",
    "nf-core/methylseq",
]
# Of a hundred runs: how many end (or are) in each state.
STATES = (
    [State.COMPLETE] * 80
    + [State.EXECUTOR_ERROR] * 10
    + [State.CANCELED] * 5
    + [State.SYSTEM_ERROR] * 2
    + [State.RUNNING] * 2
    + [State.QUEUED] * 1
)
CHUNK = 20_000
SECRET = "run-count-benchmark"  # the server's page-token key, to make a deep token
YEAR = timedelta(days=365)


def _label(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    return f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size)


def _rows(count: int, users: list[int], workspaces: list[int | None], rng: random.Random):
    """``count`` runs and their tags, as (runs, tags) lists of column dicts."""
    now = datetime.now(UTC)
    runs, tags = [], []
    for _ in range(count):
        run_id = new_run_id()
        created = now - YEAR * rng.random()
        state = rng.choice(STATES)
        pipeline = rng.choice(PIPELINES)
        project, sample = f"p{rng.randrange(10)}", f"s{rng.randrange(1000)}"
        ended = state not in (State.RUNNING, State.QUEUED)
        runs.append(
            {
                "id": run_id,
                "owner_id": rng.choice(users),
                "workspace_id": rng.choice(workspaces),
                "state": state,
                "source": "tower",
                "created_at": created,
                "updated_at": created,
                "start_time": created + timedelta(minutes=2) if state != State.QUEUED else None,
                "end_time": created + timedelta(hours=3) if ended else None,
                "request": {"workflow_url": pipeline, "workflow_type": "NFL"},
                "tags": {"project": project, "sample": sample},
                "outputs": {},
                "pipeline": pipeline,
                "project_name": pipeline,
                "run_name": f"{rng.choice(['happy', 'brave', 'calm', 'eager'])}_{run_id[:6]}",
                "session_id": run_id + "-session",
                "revision": "1.0.0",
                "params": {"input": "samplesheet.csv", "outdir": "results"},
                "user_name": "bench",
            }
        )
        tags += [
            {"run_id": run_id, "key": "project", "value": project, "created_at": created},
            {"run_id": run_id, "key": "sample", "value": sample, "created_at": created},
        ]
    return runs, tags


def seed(db: Database, count: int, users: list[int], workspaces: list[int | None], rng) -> float:
    """Write ``count`` more runs in chunks on one connection; returns the seconds it took.

    SQLite gets a page cache that holds the indexes (each run goes to random places in
    seven B-trees; with the default 2 MiB cache most inserts wait on the disk), and
    neither database waits for the disk at each commit."""
    started = time.perf_counter()
    left = count
    with db.engine.connect() as connection:
        if db.engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA cache_size = -1000000")
            connection.exec_driver_sql("PRAGMA synchronous = OFF")
        else:
            connection.exec_driver_sql("SET synchronous_commit = off")
        connection.commit()
        while left:
            share = min(CHUNK, left)
            rows, tags = _rows(share, users, workspaces, rng)
            connection.execute(insert(Run.__table__), rows)
            connection.execute(insert(RunTag.__table__), tags)
            connection.commit()
            left -= share
        if db.engine.dialect.name == "postgresql":  # what autovacuum does soon after
            connection.exec_driver_sql("ANALYZE runs")
            connection.exec_driver_sql("ANALYZE run_tags")
            connection.commit()
    return time.perf_counter() - started


def _users(db: Database) -> tuple[int, list[int]]:
    """The administrator's id, and the ids of the users that own runs (made here)."""
    with db.session() as session:
        admin = session.execute(select(User.id).where(User.is_admin)).scalars().first()
        for n in range(4):
            session.add(User(name=f"bench-user-{n}"))
        session.commit()
        others = list(
            session.execute(select(User.id).where(User.name.like("bench-user-%"))).scalars()
        )
    return admin, [admin, *others]


def _workspaces(client: httpx.Client) -> list[int]:
    org = client.post(
        "/api/orgs", json={"organization": {"name": "bench", "fullName": "Bench Inc."}}
    )
    org.raise_for_status()
    org_id = org.json()["organization"]["orgId"]
    made = []
    for n in range(4):
        ws = client.post(
            f"/api/orgs/{org_id}/workspaces",
            json={
                "workspace": {"name": f"lab{n}", "fullName": f"Lab {n}", "visibility": "PRIVATE"}
            },
        )
        ws.raise_for_status()
        made.append(ws.json()["workspace"]["id"])
    return made


def _deep_token(db: Database, admin: int, workspace: int) -> str:
    """A WES page token half-way through the workspace's runs (as a client paging there
    would hold; found here once, by offset, untimed)."""
    with db.session() as session:
        scope = select(Run.created_at, Run.id).where(Run.workspace_id == workspace)
        count = len(session.execute(scope.with_only_columns(Run.id)).all())
        row = session.execute(
            scope.order_by(Run.created_at.desc(), Run.id.desc()).offset(count // 2).limit(1)
        ).one()
    return encode_page_token(
        SECRET.encode(), f"runs:{admin}:{workspace}", [row.created_at.isoformat(), row.id]
    )


def plans(db: Database, token: str, workspace: int, deep_token: str) -> dict[str, str]:
    """The database's plan of each statement the timed reads send, found by making the
    same calls of the run service here (PostgreSQL's with ``EXPLAIN ANALYZE``)."""
    with db.session() as session:
        principal = tokens.authenticate(session, token)
    assert principal is not None
    principal = dataclasses.replace(principal, workspace_id=workspace, workspace_role="owner")
    key = SECRET.encode()

    def wes(**filters):
        return lambda session, page_token=None: runs.list_runs(
            session,
            principal,
            page_size=PAGE,
            page_token=page_token,
            signing_key=key,
            filters=runs.run_filter(**filters),
        )

    calls = {
        "Tower list, search 'rnaseq status:succeeded'": lambda session: runs.list_workflows(
            session,
            principal,
            max_=PAGE,
            offset=None,
            search="rnaseq status:succeeded",
            include_total=False,
            signing_key=key,
        ),
        "WES list, tag project=p3": wes(tag_key=["project"], tag_value=["p3"]),
        "WES list, first page": wes(),
        "WES list, page half-way through (by token)": lambda session: wes()(session, deep_token),
        "state counts (service-info, /metrics)": runs.state_counts,
    }
    found: dict[str, str] = {}
    for name, call in calls.items():
        statements: list[tuple[str, object]] = []

        def record(conn, cursor, statement, parameters, context, executemany, seen=statements):
            if statement.lstrip().upper().startswith("SELECT"):
                seen.append((statement, parameters))

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            with db.session() as session:
                call(session)
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        shown = []
        with db.engine.connect() as connection:
            cursor = connection.connection.dbapi_connection.cursor()
            for statement, parameters in statements:
                if db.engine.dialect.name == "sqlite":
                    cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                    plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
                else:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                shown.append(" ".join(statement.split())[:300] + "\n" + plan)
            connection.rollback()
        found[name] = "\n\n".join(shown)
    return found


def reads(workspace: int, deep_token: str) -> dict[str, str]:
    listed = f"{WES}/runs?workspace_id={workspace}&page_size={PAGE}"
    search = "search=rnaseq%20status:succeeded"
    tower = f"/api/workflow?workspaceId={workspace}&max={PAGE}&{search}"
    return {
        "Tower list, search 'rnaseq status:succeeded'": tower,
        "Tower list, that search with includeTotalSize": f"{tower}&includeTotalSize=true",
        "WES list, tag project=p3": f"{listed}&tag_key=project&tag_value=p3",
        "WES list, first page": listed,
        "WES list, page half-way through (by token)": f"{listed}&page_token={deep_token}",
        "service-info": f"{WES}/service-info",
        "/metrics": "/metrics",
    }


TARGETED = (
    "Tower list, search 'rnaseq status:succeeded'",
    "WES list, tag project=p3",
    "WES list, first page",
    "WES list, page half-way through (by token)",
    "service-info",
    "/metrics",
)


def measure(url: str | None, sizes: list[int], requests: int, rounds: int) -> dict:
    folder = fresh_folder("wes-gateway-bench-count-")
    database_url, drop = throwaway_database(url, folder)
    figures: dict = {"seed": {}, "times": {}}
    rng = random.Random(9)
    try:
        with running_gateway(
            folder,
            database_url,
            WES_GATEWAY_EMBEDDED_WORKER="false",
            WES_GATEWAY_SECRET_KEY=SECRET,
        ) as gw:
            db = Database(gw.database_url)
            try:
                with httpx.Client(base_url=gw.base, headers=gw.headers, timeout=300) as client:
                    workspaces = _workspaces(client)
                    admin, users = _users(db)
                    seeded = 0
                    for size in sizes:
                        figures["seed"][size] = seed(
                            db, size - seeded, users, [None, *workspaces], rng
                        )
                        seeded = size
                        token = _deep_token(db, admin, workspaces[0])
                        figures["times"][size] = _timed(
                            client, reads(workspaces[0], token), requests, rounds
                        )
                        print(f"  {_label(size)} runs: seeded in {figures['seed'][size]:.0f} s")
                    for name, plan in plans(db, gw.token, workspaces[0], token).items():
                        print(f"\n--- plan at {_label(sizes[-1])} runs: {name}\n{plan}")
            finally:
                db.dispose()
    finally:
        drop()
    return figures


def _timed(client: httpx.Client, paths: dict[str, str], requests: int, rounds: int) -> dict:
    best: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, path in paths.items():
            times = request_times(client, path, requests)
            if name not in best or median(times) < median(best[name]):
                best[name] = times
    return best


def report(
    report: Report, databases: dict[str, str | None], sizes: list[int], requests: int
) -> None:
    rounds = 1 if report.quick else ROUNDS
    for kind, url in databases.items():
        figures = measure(url, sizes, requests, rounds)
        group = f"Run count ({kind})"
        seeded = sum(figures["seed"].values())
        report.add(
            Figure(group, f"bulk seeding {_label(sizes[-1])} runs (2 tags each)", "s", seeded)
        )
        smallest, largest = sizes[0], sizes[-1]
        for size in sizes:
            for name, times in figures["times"][size].items():
                report.add(
                    Figure(
                        group,
                        f"{name} at {_label(size)} runs, p50",
                        "ms",
                        median(times),
                        note=f"p99 {percentile(times, 99):.1f} ms",
                    )
                )
        for name in figures["times"][largest]:
            ratio = median(figures["times"][largest][name]) / median(
                figures["times"][smallest][name]
            )
            targeted = name in TARGETED
            report.add(
                Figure(
                    group,
                    f"{name}: p50 at {_label(largest)} ÷ at {_label(smallest)}",
                    "×",
                    ratio,
                    target=f"≤ {TARGET}" if targeted else "",
                    met=(ratio <= TARGET) if targeted and not report.quick else None,
                )
            )
