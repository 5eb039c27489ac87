"""Nurses' logins and sessions for the dashboard (blocking database code: call it in a thread).

A session is a random 32-byte token in a cookie; the database keeps only its sha256, with a
per-session CSRF token and the times used for the idle and absolute timeouts. Failed logins are
counted per name in memory (this process) for a simple lockout; every outcome is audited.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import sessionmaker

from bot.escalation.db import transaction
from bot.escalation.models import Staff, StaffSession
from bot.escalation.service import audit
from bot.escalation.staff import verify_password

MAX_NAME = 120
MAX_PASSWORD = 1024


def new_token() -> str:
    return secrets.token_urlsafe(32)            # 32 random bytes, 43 characters


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normalise_name(name: str) -> str:
    return " ".join((name or "").split())


@dataclass(frozen=True)
class CurrentStaff:
    """The nurse behind a valid session."""

    id: int
    name: str
    csrf_token: str
    token_hash: str


class Lockout:
    """At most `max_failures` failed logins per name within `window`, then refuse for `window`.

    Keyed by the name as typed (normalised, case-folded) whether or not it exists, so a lockout
    says nothing about which names are on the roster. Bounded: the oldest names are forgotten.
    """

    def __init__(self, clock: Callable[[], dt.datetime], max_failures: int = 5,
                 window: dt.timedelta = dt.timedelta(minutes=15), max_names: int = 10_000):
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self.max_names = max_names
        self._failures: "OrderedDict[str, List[dt.datetime]]" = OrderedDict()
        self._locked_until: "OrderedDict[str, dt.datetime]" = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str) -> str:
        return normalise_name(name).casefold()[:MAX_NAME]

    def locked(self, name: str) -> bool:
        key, now = self._key(name), self.clock()
        with self._lock:
            until = self._locked_until.get(key)
            if until is None:
                return False
            if now >= until:
                del self._locked_until[key]
                self._failures.pop(key, None)
                return False
            return True

    def failed(self, name: str) -> bool:
        """Count a failure; True when this one locks the name."""
        key, now = self._key(name), self.clock()
        with self._lock:
            recent = [t for t in self._failures.pop(key, []) if now - t < self.window] + [now]
            self._failures[key] = recent
            while len(self._failures) > self.max_names:
                self._failures.popitem(last=False)
            if len(recent) >= self.max_failures:
                self._locked_until[key] = now + self.window
                while len(self._locked_until) > self.max_names:
                    self._locked_until.popitem(last=False)
                self._failures.pop(key, None)
                return True
            return False

    def succeeded(self, name: str) -> None:
        key = self._key(name)
        with self._lock:
            self._failures.pop(key, None)
            self._locked_until.pop(key, None)


# -- blocking database work ---------------------------------------------------------------------

def check_password(sessions: sessionmaker, name: str, password: str) -> Tuple[Optional[Staff], Optional[int]]:
    """(the active staff member, None) on success, else (None, the id the name belongs to or None).

    The same scrypt work is done whether or not the name exists, is active, or has a password.
    """
    with sessions() as s:
        rows = s.execute(select(Staff).where(or_(Staff.name == name,
                                                 func.lower(Staff.name) == name.lower()))).scalars().all()
    exact = [r for r in rows if r.name == name]
    staff = exact[0] if exact else (rows[0] if len(rows) == 1 else None)
    ok = verify_password(password, staff.password_hash if staff is not None else None)
    if staff is not None and staff.active and ok:
        return staff, None
    return None, (staff.id if staff is not None else None)


def record_login_failure(sessions: sessionmaker, name: str, staff_id: Optional[int], reason: str,
                         locked_now: bool, client: Optional[str]) -> None:
    actor = ({"actor_type": "staff", "actor_id": str(staff_id)} if staff_id is not None
             else {"actor_type": "unknown", "actor_id": None})
    with transaction(sessions) as s:
        audit(s, "login_failed", name=name[:MAX_NAME], reason=reason, client=client, **actor)
        if locked_now:
            audit(s, "login_lockout", name=name[:MAX_NAME], client=client, **actor)


def start_session(sessions: sessionmaker, staff: Staff, now: dt.datetime, replaces: Optional[str],
                  idle: dt.timedelta, absolute: dt.timedelta, client: Optional[str]) -> Tuple[str, str]:
    """A new session for the nurse (any session the browser had is ended); returns (token, csrf)."""
    token, csrf = new_token(), new_token()
    with transaction(sessions) as s:
        if replaces:
            s.execute(delete(StaffSession).where(StaffSession.token_hash == replaces))
        s.execute(delete(StaffSession).where(or_(StaffSession.last_seen_at < now - idle,
                                                 StaffSession.created_at < now - absolute)))
        s.add(StaffSession(token_hash=token_hash(token), staff_id=staff.id, csrf_token=csrf,
                           created_at=now, last_seen_at=now))
        audit(s, "login", actor_type="staff", actor_id=str(staff.id), client=client)
    return token, csrf


def load_session(sessions: sessionmaker, hashed: str, now: dt.datetime, idle: dt.timedelta,
                 absolute: dt.timedelta, touch: bool) -> Tuple[Optional[CurrentStaff], bool]:
    """(the nurse, False) for a valid session; (None, True) if it had expired (it is deleted and
    audited); (None, False) if there is no such session."""
    with transaction(sessions) as s:
        row = s.get(StaffSession, hashed)
        if row is None:
            return None, False
        staff = s.get(Staff, row.staff_id)
        reason = None
        if staff is None or not staff.active:
            reason = "staff no longer active"
        elif now - row.last_seen_at > idle:
            reason = "idle timeout"
        elif now - row.created_at > absolute:
            reason = "absolute timeout"
        if reason:
            s.delete(row)
            audit(s, "session_expired", actor_type="staff", actor_id=str(row.staff_id), reason=reason)
            return None, True
        if touch:
            row.last_seen_at = now
        return CurrentStaff(staff.id, staff.name, row.csrf_token, hashed), False


def end_session(sessions: sessionmaker, staff: CurrentStaff, client: Optional[str]) -> None:
    with transaction(sessions) as s:
        s.execute(delete(StaffSession).where(StaffSession.token_hash == staff.token_hash))
        audit(s, "logout", actor_type="staff", actor_id=str(staff.id), client=client)


def record(sessions: sessionmaker, action: str, staff: Optional[CurrentStaff],
           escalation_id: Optional[str] = None, **detail) -> None:
    """One audit row for something done on the dashboard."""
    actor = ({"actor_type": "staff", "actor_id": str(staff.id)} if staff is not None
             else {"actor_type": "unknown", "actor_id": None})
    with transaction(sessions) as s:
        audit(s, action, escalation_id=escalation_id, **actor, **detail)
