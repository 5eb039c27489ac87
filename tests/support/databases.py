"""Throwaway databases for tests: an SQLite file, or a fresh schema on the local PostgreSQL."""
from __future__ import annotations

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
