"""What a test compares before and after a hostile request: files on disk, the rows of
the database, how many runs exist."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from wes_gateway.domain.models import Base, Run, RunStateChange, Task
from wes_gateway.infra.db import Database

# SQLite's own files change as it reads (its shared-memory index above all); the
# database is compared by its rows (run_record), not by its files.
SQLITE_FILES = (".db", ".db-wal", ".db-shm", ".db-journal")


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` but SQLite's: relative path -> (size,
    modification time). (Plain strings, not Path objects: a test may walk thousands of
    entries twice.)"""
    found = {}
    start = os.fspath(root)
    skip = len(os.path.join(start, ""))
    for folder, dirs, files in os.walk(start):
        for name in dirs + files:
            if name.endswith(SQLITE_FILES):
                continue
            path = os.path.join(folder, name)
            stat = os.lstat(path)
            found[path[skip:]] = (stat.st_size, stat.st_mtime_ns)
    return found


def run_count(db: Database) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(Run)).scalar_one()


def run_record(db: Database, run_id: str) -> dict[str, Any]:
    """A run's row, its tasks and its state history, as the database holds them."""
    with db.session() as session:
        run = session.execute(select(Run.__table__).where(Run.id == run_id)).mappings().one()
        tasks = session.execute(
            select(Task.__table__).where(Task.run_id == run_id).order_by(Task.task_id)
        ).mappings()
        history = session.execute(
            select(RunStateChange.__table__)
            .where(RunStateChange.run_id == run_id)
            .order_by(RunStateChange.id)
        ).mappings()
        return {
            "run": dict(run),
            "tasks": [dict(t) for t in tasks],
            "history": [dict(h) for h in history],
        }


def all_text(db: Database) -> str:
    """Every value of every row of every table, as text: what a database dump shows."""
    chunks = []
    with db.session() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                chunks.append(f"{table.name}: " + " | ".join(repr(value) for value in row))
    return "\n".join(chunks)
