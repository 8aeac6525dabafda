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

from wes_gateway.domain import runs
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

    @cached_property
    def celery(self) -> Celery:
        """The Celery app this process sends work through (built on first use)."""
        from wes_gateway.infra.queue import ensure_broker_folders, make_celery

        ensure_broker_folders(self.settings)
        return make_celery(self.settings)

    def state_counts(self) -> dict[str, int]:
        """Runs by state, counted at most ``state_counts_max_age`` seconds ago: counting
        reads an index entry of every run, and service-info and /metrics ask each call."""
        with self._counts_lock:  # one count at a time; the others wait and reuse it
            if self._counts is not None:
                counted_at, counts = self._counts
                if time.monotonic() - counted_at < self.settings.state_counts_max_age:
                    return dict(counts)
            with self.db.session() as session:
                counts = runs.state_counts(session)
            self._counts = (time.monotonic(), counts)
            return dict(counts)

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
