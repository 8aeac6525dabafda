"""task_loads: the workflow stats' counts (CPU time of finished tasks by status, failures
ignored or retried), so a run's stats read its kept rows, not its task records

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 14:30:00

The kept rows get these counts from the run's finished task records here, by the rules
of this revision's time (a migration keeps working whatever the domain becomes): CPU
time is realtime × cpus (1 when unknown), by status; a failure counts as ignored or
retried by the ``errorAction`` Nextflow reported.
"""

from __future__ import annotations

import json
import math
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_MILLIS = {"COMPLETED": "succeed_millis", "CACHED": "cached_millis", "FAILED": "failed_millis"}
_ACTIONS = {"IGNORE": "ignored", "RETRY": "retries"}
_COLUMNS = (*_MILLIS.values(), *_ACTIONS.values())
_LARGEST = 2**45


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return value


def _cpu_millis(record: dict) -> int:
    millis = int(_number(record.get("realtime")) * (int(_number(record.get("cpus"))) or 1))
    return min(max(millis, 0), _LARGEST)


def _fill(connection: sa.Connection, run_id: str) -> None:
    sums: dict[str, dict[str, int]] = {}
    rows = connection.execute(
        sa.text(
            "SELECT process, status, data FROM tasks WHERE run_id = :run"
            " AND status IN ('COMPLETED', 'CACHED', 'FAILED')"
        ),
        {"run": run_id},
    )
    for process, status, data in rows:
        record = json.loads(data) if isinstance(data, str) else data
        record = record if isinstance(record, dict) else {}
        action = _ACTIONS.get(str(record.get("errorAction") or "").upper())
        for group in (process or "unknown", ""):
            total = sums.setdefault(group, dict.fromkeys(_COLUMNS, 0))
            total[_MILLIS[status]] += _cpu_millis(record)
            if status == "FAILED" and action:
                total[action] += 1
    for group, total in sums.items():
        connection.execute(
            sa.text(
                "UPDATE task_loads SET "
                + ", ".join(f"{column} = :{column}" for column in _COLUMNS)
                + " WHERE run_id = :run AND process = :process"
            ),
            {**total, "run": run_id, "process": group},
        )


def upgrade() -> None:
    with op.batch_alter_table("task_loads") as batch:
        for column in _COLUMNS:
            batch.add_column(sa.Column(column, sa.BigInteger(), nullable=True))
    connection = op.get_bind()
    connection.execute(
        sa.text("UPDATE task_loads SET " + ", ".join(f"{column} = 0" for column in _COLUMNS))
    )
    run_ids = connection.execute(sa.text("SELECT DISTINCT run_id FROM task_loads")).scalars()
    for run_id in run_ids.all():
        _fill(connection, run_id)
    with op.batch_alter_table("task_loads") as batch:
        for column in _COLUMNS:
            batch.alter_column(column, existing_type=sa.BigInteger(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("task_loads") as batch:
        for column in _COLUMNS:
            batch.drop_column(column)
