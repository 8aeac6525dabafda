"""Which task records of a run changed since a follower last looked, so a run's event
stream can carry the changed rows instead of making its page read the tasks list again.

A change of tasks is noted in ``run_changes`` without saying which tasks: the records
themselves say when they were last written (``Task.updated_at``, stamped while the
writer holds the run's row, so one run's writes are stamped in the order they commit).
A follower keeps how far it has read and looks back ``SLACK`` before that, for a
writer on another host whose clock is a little behind, or a transaction that committed a
little after it stamped its rows; what it has already handed out in that window is not
handed out again. A record written with an older time than that (the end of a run,
stamped with the time Nextflow reported) is not found here: a follower tells its client
to read the tasks again when the run has ended.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from wes_gateway.domain.models import Task
from wes_gateway.domain.runs import TASK_VIEW_COLUMNS

SLACK = timedelta(seconds=5)
MOST = 100  # more changed records than this since the last look: the client reads again

# What the tasks list shows of a task, and when it was written.
_COLUMNS = (*TASK_VIEW_COLUMNS, Task.id, Task.updated_at)


class TaskCursor:
    """One follower's place in one run's task records."""

    def __init__(self, run_id: str, start: datetime) -> None:
        self.run_id = run_id
        self.newest = start  # the latest write time read so far
        self.floor = start - SLACK  # nothing at or before this is looked at again
        self.handed: dict[int, datetime] = {}  # task id -> the write handed out, in the window

    def changed(self, session: Session, most: int = MOST) -> list[Task] | None:
        """The records written since the last look (most recently written first), or
        None when more than ``most`` were: the client should read the list again."""
        since = max(self.floor, self.newest - SLACK)
        self.handed = {key: at for key, at in self.handed.items() if at > since}
        fetch = most + 1 + len(self.handed)
        rows = list(
            session.execute(
                select(Task)
                .options(load_only(*_COLUMNS))
                .where(Task.run_id == self.run_id, Task.updated_at > since)
                .order_by(Task.updated_at.desc(), Task.task_id.desc())
                .limit(fetch)
            ).scalars()
        )
        fresh = [row for row in rows if self.handed.get(row.task_id) != row.updated_at]
        if rows:
            self.newest = max(self.newest, rows[0].updated_at)
        if len(rows) == fetch or len(fresh) > most:
            # Too many to hand out: the client reads the list, which has them all.
            self.floor = self.newest
            self.handed = {}
            return None
        for row in fresh:
            self.handed[row.task_id] = row.updated_at
        return fresh
