"""Seeding runs through the run service (the code path of ``POST /runs``), not raw SQL."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from wes_gateway.domain import runs, tokens
from wes_gateway.domain.launch import RunRequest
from wes_gateway.infra.db import Database

REQUEST = RunRequest(
    workflow_type="NFL",
    workflow_type_version="DSL2",
    workflow_url="nf-core/demo",
    workflow_params={"input": "samplesheet.csv", "outdir": "results"},
    tags={"project": "bench"},
    workflow_engine_parameters={"revision": "1.0.1"},
)


def seed_runs(database_url: str, runs_dir, token: str, count: int) -> float:
    """Accept ``count`` runs as the owner of ``token``; returns the seconds it took.

    The runs stay QUEUED (the benchmark's server runs no worker), which is what a list
    reads the same way as any other state.
    """
    db = Database(database_url)
    try:
        with db.session() as session:
            principal = tokens.authenticate(session, token)
        assert principal is not None, "the benchmark's token is not known to the database"
        # SQLite takes one writer at a time; PostgreSQL commits several at once.
        writers = 1 if database_url.startswith("sqlite") else 4

        def accept(share: int) -> None:
            with db.sessions() as session:
                for _ in range(share):
                    runs.create_run(session, principal, REQUEST, [], run_dir_of=runs_dir.joinpath)

        shares = [count // writers + (1 if n < count % writers else 0) for n in range(writers)]
        started = time.perf_counter()
        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(accept, shares))
        elapsed = time.perf_counter() - started
        if writers > 1:
            # What autovacuum does within a minute of such growth: without fresh statistics
            # the planner still sees a small table and lists runs by a scan and a sort.
            with db.engine.connect() as connection:
                connection.execute(text("ANALYZE"))
                connection.commit()
        return elapsed
    finally:
        db.dispose()
