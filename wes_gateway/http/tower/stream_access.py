"""Whether the caller of an open event stream may still read what it follows.

A stream is authorised when it opens, as the run's describe or the workspace's list is;
it may then stay open for ``events_stream_seconds``. So that revoking a token (or its
expiry, or the caller's removal from the workspace, or the run's deletion) also ends the
streams it opened, each stream asks again every ``RECHECK_SECONDS``: the token is still
in force and the caller still passes the operation's check. Streams of the same caller
on the same subject share one check in each period, so a user's many tabs on one run
cost one read, not one per tab; nothing is read per event.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from wes_gateway.domain import run_changes, runs, tenancy, tokens
from wes_gateway.domain.errors import Forbidden, NotFound
from wes_gateway.domain.models import Run
from wes_gateway.domain.tokens import Principal
from wes_gateway.infra.db import Database

RECHECK_SECONDS = 5.0


def token_works(session, claims: dict[str, Any]) -> bool:
    """Whether the token behind ``claims`` still works: not revoked or expired, and for
    a run's own token, its run not ended (as the bearer check has it)."""
    if not tokens.in_force(session, str(claims.get("tid"))):
        return False
    run_id = claims.get("run")
    return run_id is None or run_changes.active(session, str(run_id))


class StreamAccess:
    """The checks of one API process's open streams, at most one a period per caller
    and subject."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._checked: dict[tuple, tuple[float, bool]] = {}

    def allowed(
        self, claims: dict[str, Any], operation: str, workspace_id: int | None, run_id: str | None
    ) -> bool:
        """Whether the stream may go on (blocking: call it off the event loop)."""
        claims = {name: value for name, value in claims.items() if name != "ticket_for"}
        key = (json.dumps(claims, sort_keys=True, default=str), operation, workspace_id, run_id)
        now = time.monotonic()
        with self._lock:
            found = self._checked.get(key)
            if found is not None and now - found[0] < RECHECK_SECONDS:
                return found[1]
        answer = self._check(claims, operation, workspace_id, run_id)
        with self._lock:
            self._checked[key] = (time.monotonic(), answer)
            if len(self._checked) > 64:
                stale = now - RECHECK_SECONDS
                self._checked = {k: v for k, v in self._checked.items() if v[0] >= stale}
        return answer

    def _check(
        self, claims: dict[str, Any], operation: str, workspace_id: int | None, run_id: str | None
    ) -> bool:
        with self.db.session() as session:
            if not token_works(session, claims):
                return False
            try:
                who = tenancy.acting(
                    session, Principal.from_claims(claims), workspace_id, operation
                )
                if run_id is not None:
                    runs.get_run(session, who, run_id, Run.id)
            except (Forbidden, NotFound):
                return False
        return True
