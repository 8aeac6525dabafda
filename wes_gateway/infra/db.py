"""Database conventions: the declarative base, column types shared by every model, and
the engine and session factory built from the settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

# Named constraints, so migrations diff cleanly on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def __repr__(self) -> str:
        ident = getattr(self, "id", None)
        return f"<{type(self).__name__} {ident!r}>"


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no time zones), always handed out time-zone aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return _naive_utc(value)

    @staticmethod
    def driver_value(value: datetime | None, dialect_name: str) -> datetime | str | None:
        """What a column of this type hands the driver, for bulk statements that bind raw
        values (SQLAlchemy's per-value type processing costs more than the insert itself):
        naive UTC, as text in SQLAlchemy's SQLite format on SQLite."""
        naive = _naive_utc(value)
        if naive is None or dialect_name != "sqlite":
            return naive
        return naive.isoformat(" ", "microseconds")

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


SQLITE_MMAP_BYTES = 1 << 30  # address space, not memory: only the pages read are resident


def make_engine(url: str, *, pooled: bool = True, pool: dict[str, Any] | None = None) -> Engine:
    """An engine for ``url``; ``pooled=False`` for one-off jobs such as migrations.
    ``pool`` sizes a server database's connection pool (``pool_size``, ``max_overflow``,
    ``pool_timeout``: ``Settings.db_pool``); without it, SQLAlchemy's own sizes."""
    pooling: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **pooling
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets readers work while one writer commits; foreign keys are off by default.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Pages read through a memory map, not copied into each connection's 2 MiB
            # cache one system call at a time: a list page of a million-run database
            # reads its rows from scattered pages (about 40 % less time per page read).
            cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            cursor.close()

        return engine
    if pooled:
        pooling = {"pool_pre_ping": True, **(pool or {})}
    return create_engine(url, **pooling)


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, pool: dict[str, Any] | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, pool=pool)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Any) -> Database:
        return cls(settings.effective_database_url, pool=settings.db_pool)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def listen(self, channel: str, timeout: float) -> Iterator[str | None]:
        """PostgreSQL notifications on ``channel``, on a connection of their own: None
        once listening, then each payload as it arrives, and None after ``timeout``
        seconds without one (so the caller can look up what it may have missed). Ends by
        raising when the connection is lost."""
        import psycopg  # the PostgreSQL driver, present wherever the URL names it

        url = self.engine.url.set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f'LISTEN "{channel}"')
            yield None  # listening: what came before is for the caller to look up now
            while True:
                got = False
                for notice in conn.notifies(timeout=timeout, stop_after=1):
                    got = True
                    yield notice.payload
                if not got:
                    yield None
