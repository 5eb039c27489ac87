"""The dashboard's login throttle, in the database so it holds across processes and restarts.

Each attempt is counted BEFORE the password is checked, atomically, against two keys: the login
name (hashed, so the table names nobody) and the client address. An attempt is admitted only
while both keys are under their limits; a successful login clears both. Past a limit the key
gets a backoff that doubles with each further attempt (capped), not a hard lock: an attacker
guessing from one address is slowed down without locking the nurse out from her own computer,
and guessing one name from many addresses only earns that name short, growing pauses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from bot.store.db import transaction
from bot.store.models import LoginAttempt


@dataclass(frozen=True)
class Limits:
    per_name: int = 5  # attempts in `window` before the name backs off
    per_address: int = 20  # ...the address (a ward's computers may share one)
    window: dt.timedelta = dt.timedelta(minutes=15)
    first_backoff: dt.timedelta = dt.timedelta(seconds=30)
    max_backoff: dt.timedelta = dt.timedelta(minutes=15)


DEFAULT_LIMITS = Limits()


def name_key(name: str) -> str:
    folded = " ".join((name or "").split()).casefold()[:120]
    return "name:" + hashlib.sha256(folded.encode("utf-8")).hexdigest()[:40]


def address_key(address: str | None) -> str:
    return "addr:" + (address or "unknown")[:70]


@dataclass(frozen=True)
class Verdict:
    admitted: bool
    wait_seconds: float = 0.0
    key: str = ""  # which key refused ("name" or "address")


class LoginThrottle:
    def __init__(self, sessions: sessionmaker, clock: Callable[[], dt.datetime], limits: Limits = DEFAULT_LIMITS):
        self.sessions = sessions
        self.clock = clock
        self.limits = limits

    def admit(self, name: str, address: str | None) -> Verdict:
        """Count this attempt against both keys; admitted only if neither is backing off."""
        now = self.clock()
        with transaction(self.sessions) as s:
            for kind, key, limit in (
                ("address", address_key(address), self.limits.per_address),
                ("name", name_key(name), self.limits.per_name),
            ):
                wait = self._count(s, key, limit, now)
                if wait > 0:
                    return Verdict(False, wait, kind)
        return Verdict(True)

    def succeeded(self, name: str, address: str | None) -> None:
        with transaction(self.sessions) as s:
            for key in (address_key(address), name_key(name)):
                row = s.get(LoginAttempt, key)
                if row is not None:
                    s.delete(row)

    def _count(self, s: Session, key: str, limit: int, now: dt.datetime) -> float:
        """Seconds to wait (0: admitted). The insert comes first so that on SQLite the
        transaction holds the write lock before it reads (no lost update between processes)."""
        dialect = s.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(LoginAttempt)
        s.execute(insert.values(key=key, failures=0, window_start=now).on_conflict_do_nothing(index_elements=["key"]))
        stmt = select(LoginAttempt).where(LoginAttempt.key == key)
        if dialect == "postgresql":
            stmt = stmt.with_for_update()
        row = s.execute(stmt).scalars().one()
        if row.blocked_until is not None:
            if now < row.blocked_until:
                return (row.blocked_until - now).total_seconds()
            row.blocked_until = None  # one try after each backoff; the next failure
            row.failures += 1  # without a success between backs off longer
            return 0.0
        if now - row.window_start > self.limits.window:  # a quiet window forgets the past
            row.failures, row.window_start = 0, now
        row.failures += 1
        if row.failures <= limit:
            return 0.0
        backoff = min(self.limits.max_backoff, self.limits.first_backoff * 2 ** min(row.failures - limit - 1, 20))
        row.blocked_until = now + backoff
        return backoff.total_seconds()
