"""Database access: engines for SQLite (embedded default) and PostgreSQL, migrations, retries."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
T = TypeVar("T")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: an error never prints a patient's words bound into a statement
        engine = create_engine(
            url, future=True, hide_parameters=True, connect_args={"timeout": 30, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # pool_pre_ping: a connection killed by a database restart is replaced, not used
    # connect_timeout: a database that is down fails fast instead of holding a patient's answer
    return create_engine(
        url,
        future=True,
        pool_pre_ping=True,
        pool_recycle=300,
        hide_parameters=True,
        connect_args={"connect_timeout": 3},
    )


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, future=True, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "head")


def is_transient(exc: BaseException) -> bool:
    """A database error worth retrying (connection lost, server restarting, lock timeout)."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def with_retries(
    fn: Callable[[], T],
    attempts: int = 8,
    first_delay: float = 0.25,
    max_delay: float = 5.0,
    what: str = "database call",
) -> T:
    """Run fn, retrying transient database errors with backoff (about 30 s in all)."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified below
            if not is_transient(exc) or attempt == attempts:
                raise
            log.warning(
                "%s failed (attempt %d/%d): %s; retrying in %.1fs", what, attempt, attempts, type(exc).__name__, delay
            )
            time.sleep(delay)
            delay = min(max_delay, delay * 2)
    raise AssertionError("unreachable")


@contextmanager
def transaction(factory: sessionmaker) -> Iterator[Session]:
    with factory() as session, session.begin():
        yield session


class Database:
    """One engine and session factory per process, from a URL (settings.database_url)."""

    def __init__(self, url: str, migrate: bool = True):
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            upgrade(self.engine)
        self.sessions = session_factory(self.engine)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def dispose(self) -> None:
        self.engine.dispose()


_default: Database | None = None


def default() -> Database:
    global _default
    if _default is None:
        from bot import settings

        _default = Database(settings.get().database_url)
    return _default


def sessions_or_default(sessions: sessionmaker | None) -> sessionmaker:
    """The given session factory, or the process-wide database's (callers that take an optional one)."""
    return sessions if sessions is not None else default().sessions


def chunks(items: list[T], n: int = 500) -> Iterator[list[T]]:
    """Slices of at most n, for IN (...) lists that stay under the databases' parameter limits."""
    for i in range(0, len(items), n):
        yield items[i : i + n]
