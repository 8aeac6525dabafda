"""One follower of run changes per API process, shared by all its open event streams.

On PostgreSQL it listens for the notifications the changing transactions send
(``domain.run_changes``); on SQLite it reads the new rows of ``run_changes`` every
``events_poll_interval`` seconds while any stream is open. Either way, one thread per
process, not one query or connection per stream. Each stream subscribes with the test of
the changes it wants and gets them on an asyncio queue of its own; a stream too slow to
keep up is told to read everything again (``OVERFLOW``) rather than holding memory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from wes_gateway.domain import run_changes
from wes_gateway.domain.errors import TooManyRequests
from wes_gateway.domain.run_changes import Change
from wes_gateway.infra.config import Settings
from wes_gateway.infra.db import Database

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
OVERFLOW = None  # what a subscriber's queue gets when it fell behind
PRUNE_EVERY = 300.0


@dataclass(eq=False)
class Subscription:
    user_id: int
    wants: Callable[[Change], bool]
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE + 1))

    def _offer(self, change: Change | None) -> None:
        if self.queue.qsize() >= QUEUE_SIZE:
            if self.queue.qsize() == QUEUE_SIZE:
                self.queue.put_nowait(OVERFLOW)
            return
        self.queue.put_nowait(change)


class ChangeFeed:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._last = 0
        self._pruned_at = 0.0

    # --- streams --------------------------------------------------------------------

    def subscribe(self, user_id: int, wants: Callable[[Change], bool]) -> Subscription:
        """A new subscription, or a 429 when the user or the process has as many streams
        open as the settings allow."""
        subscription = Subscription(user_id, wants, asyncio.get_running_loop())
        with self._lock:
            if len(self._subscriptions) >= self.settings.events_streams:
                raise TooManyRequests(
                    "too many event streams open on this server; poll instead or retry later"
                )
            mine = sum(1 for sub in self._subscriptions if sub.user_id == user_id)
            if mine >= self.settings.events_streams_per_user:
                raise TooManyRequests(
                    f"you have {mine} event streams open, the most allowed; close one first"
                )
            self._subscriptions.add(subscription)
            self._start()
        self._wake.set()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def open_streams(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    # --- the follower ---------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._follow, name="run-change-feed", daemon=True
            )
            self._thread.start()

    def _dispatch(self, changes: list[Change]) -> None:
        if not changes:
            return
        with self._lock:
            subscriptions = list(self._subscriptions)
        for change in changes:
            self._last = max(self._last, change.seq)
            for sub in subscriptions:
                if sub.wants(change):
                    try:
                        sub.loop.call_soon_threadsafe(sub._offer, change)
                    except RuntimeError:  # its loop has closed
                        self.unsubscribe(sub)

    def _read_new(self) -> None:
        while True:
            with self.db.session() as session:
                changes = run_changes.since(session, self._last, limit=500)
            self._dispatch(changes)
            if len(changes) < 500:
                return

    def _head(self) -> int:
        with self.db.session() as session:
            return run_changes.bounds(session)[1]

    def _prune(self) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = time.monotonic()
        before = datetime.now(UTC) - timedelta(seconds=self.settings.events_retention)
        with self.db.session() as session:
            run_changes.prune(session, before)

    def _follow(self) -> None:
        started = False
        while True:
            try:
                if not started:  # from now on; after a lost connection, from where it was
                    self._last = self._head()
                    started = True
                if self.db.dialect == "postgresql":
                    self._listen()
                else:
                    self._poll()
            except Exception:
                log.warning("following run changes failed; again in a moment", exc_info=True)
                time.sleep(1.0)

    def _listen(self) -> None:
        for payload in self.db.listen(run_changes.CHANNEL, timeout=5.0):
            if payload is None:
                # A quiet while: catch up on anything a lost connection missed, and prune.
                self._read_new()
                self._prune()
                continue
            try:
                change = Change.from_payload(payload)
            except (ValueError, KeyError, TypeError):
                continue
            self._dispatch([change])

    def _poll(self) -> None:
        while True:
            with self._lock:
                idle = not self._subscriptions
            if idle:
                # No stream open: read on, slowly, so the follower never skips a change
                # a stream opening now would miss.
                self._wake.clear()
                self._wake.wait(timeout=5.0)
            else:
                time.sleep(self.settings.events_poll_interval)
            self._read_new()
            self._prune()
