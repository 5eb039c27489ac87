"""Throwaway databases for tests: an SQLite file, or a fresh schema on the local PostgreSQL."""
from __future__ import annotations

import contextlib
import os
import uuid

from sqlalchemy import create_engine, text

PG_URL = os.environ.get("HSG_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def postgres_available() -> bool:
    try:
        engine = create_engine(PG_URL, future=True)
        with engine.connect() as c:
            c.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


class PostgresSchema:
    """A schema of its own per test; the URL points search_path at it."""

    def __init__(self):
        self.name = "t_" + uuid.uuid4().hex[:12]
        self.admin = create_engine(PG_URL, future=True, pool_pre_ping=True)
        with self.admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{self.name}"'))
        sep = "&" if "?" in PG_URL else "?"
        self.url = f"{PG_URL}{sep}options=-csearch_path%3D{self.name}"

    def drop(self):
        with self.admin.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        self.admin.dispose()


@contextlib.contextmanager
def throwaway_database(kind: str, tmp_path):
    """A migrated Database on SQLite (a file in tmp_path) or on its own PostgreSQL schema."""
    from bot.store.db import Database

    if kind == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'test.db'}")
        try:
            yield db
        finally:
            db.dispose()
        return
    if not postgres_available():
        import pytest
        pytest.fail("PostgreSQL on 127.0.0.1:5432 is not reachable (.ci/run starts it)")
    schema = PostgresSchema()
    db = Database(schema.url)
    try:
        yield db
    finally:
        db.dispose()
        schema.drop()
