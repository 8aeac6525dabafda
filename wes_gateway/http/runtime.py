"""What a running service process holds: its settings, its database and the engine
version probe. Built once per app, reachable from request handlers."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import flask
from celery import Celery
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from wes_gateway.domain import runs, trs
from wes_gateway.domain.launch import EngineVersion
from wes_gateway.infra.config import Settings
from wes_gateway.infra.db import Database

EXTENSION_KEY = "wes_gateway"

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    engine_version: EngineVersion
    # Single sign-on (wes_gateway.http.oidc.OidcAuth), set by the app factory when an
    # OpenID provider is configured.
    oidc: Any = None
    # Resolves TRS workflow_urls through the allowed registries, keeping their answers
    # (built from the settings when not given).
    trs: trs.Resolver = None  # type: ignore[assignment]
    # The follower of run changes its event streams share (http.change_feed.ChangeFeed),
    # set by the app factory.
    change_feed: Any = None
    _counts: tuple[float, dict[str, int]] | None = field(default=None, repr=False)
    _counts_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        settings.ensure_data_dir()
        return cls(
            settings=settings,
            db=Database.from_settings(settings),
            engine_version=EngineVersion(settings.nextflow, settings.nextflow_version),
        )

    def __post_init__(self) -> None:
        if self.trs is None:
            self.trs = trs.Resolver.from_settings(self.settings)

    @cached_property
    def celery(self) -> Celery:
        """The Celery app this process sends work through (built on first use)."""
        from wes_gateway.infra.queue import ensure_broker_folders, make_celery

        ensure_broker_folders(self.settings)
        return make_celery(self.settings)

    def state_counts(self) -> dict[str, int]:
        """Runs by state, counted at most ``state_counts_max_age`` seconds ago: counting
        reads an index entry of every run, and service-info and /metrics ask each call.
        One caller counts at a time; while it does, the others get the last count
        (the first ever count is awaited), so no call but the counting one waits. A
        maximum age of 0 reuses no count: every call waits for its own."""
        kept = self._counts
        max_age = self.settings.state_counts_max_age
        if kept is not None and time.monotonic() - kept[0] < max_age:
            return dict(kept[1])
        if not self._counts_lock.acquire(blocking=kept is None or max_age <= 0):
            return dict(kept[1])  # another caller is counting
        try:
            kept = self._counts
            if kept is not None and time.monotonic() - kept[0] < max_age:
                return dict(kept[1])
            with self.db.session() as session:
                counts = runs.state_counts(session)
            self._counts = (time.monotonic(), counts)
            return dict(counts)
        finally:
            self._counts_lock.release()

    def run_dir(self, run_id: str) -> Path:
        return self.settings.run_dir(run_id)


def current() -> Runtime:
    return flask.current_app.extensions[EXTENSION_KEY]


def request_session() -> Session:
    """The database session of the current request, closed when the request ends."""
    session = flask.g.get("db_session")
    if session is None:
        session = current().db.sessions()
        flask.g.db_session = session
    return session


def close_request_session(_exc: BaseException | None = None) -> None:
    """Closing only ends what the request read (handlers commit what they write), and
    runs once the answer is on its way: a database lost meanwhile must not break it."""
    session = flask.g.pop("db_session", None)
    if session is None:
        return
    try:
        session.close()
    except SQLAlchemyError:
        log.warning("closing the request's database session failed", exc_info=True)
