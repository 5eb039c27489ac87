"""Nurses' logins and sessions for the dashboard (blocking database code: call it in a thread).

A session is a random 32-byte token in a cookie; the database keeps only its sha256, with a
per-session CSRF token and the times used for the idle and absolute timeouts. Login attempts are
throttled in the database (bot.staff.throttle); every outcome is audited.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Optional, Tuple

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import sessionmaker

from bot.escalation.db import transaction
from bot.escalation.models import Staff, StaffSession
from bot.escalation.service import audit
from bot.staff.passwords import hash_password, needs_rehash, verify_password
from bot.staff.throttle import name_key

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
    role: str = "nurse"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


# -- blocking database work ---------------------------------------------------------------------

def check_password(sessions: sessionmaker, name: str, password: str, code: Optional[str] = None
                   ) -> Tuple[Optional[Staff], Optional[int]]:
    """(the active staff member, None) on success, else (None, the id the name belongs to or None).

    The same scrypt work is done whether or not the name exists, is active, or has a password.
    A nurse with a second factor also needs the current code. A hash made at an older cost is
    replaced on success (rehash on login).
    """
    with sessions() as s:
        rows = s.execute(select(Staff).where(or_(Staff.name == name,
                                                 func.lower(Staff.name) == name.lower()))).scalars().all()
    exact = [r for r in rows if r.name == name]
    staff = exact[0] if exact else (rows[0] if len(rows) == 1 else None)
    ok = verify_password(password, staff.password_hash if staff is not None else None)
    if staff is not None and staff.active and ok and _second_factor_ok(staff, code):
        if needs_rehash(staff.password_hash):
            _rehash(sessions, staff.id, password)
        return staff, None
    return None, (staff.id if staff is not None else None)


def _second_factor_ok(staff: Staff, code: Optional[str]) -> bool:
    if not staff.totp_secret:
        return True
    import pyotp

    return bool(code) and pyotp.TOTP(staff.totp_secret).verify(str(code).strip().replace(" ", ""),
                                                               valid_window=1)


def _rehash(sessions: sessionmaker, staff_id: int, password: str) -> None:
    with transaction(sessions) as s:
        row = s.get(Staff, staff_id)
        row.password_hash = hash_password(password)
        audit(s, "password_rehashed", actor_type="staff", actor_id=str(staff_id))


def record_login_failure(sessions: sessionmaker, name: str, staff_id: Optional[int], reason: str,
                         client: Optional[str], wait_seconds: Optional[float] = None) -> None:
    """A failed or refused login. A name that is on no roster is kept only as a hash: what people
    type into the name field is sometimes their password."""
    actor = ({"actor_type": "staff", "actor_id": str(staff_id)} if staff_id is not None
             else {"actor_type": "unknown", "actor_id": None})
    with transaction(sessions) as s:
        audit(s, "login_failed", name_hash=name_key(name), reason=reason, client=client,
              wait_seconds=round(wait_seconds) if wait_seconds else None, **actor)


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
        return CurrentStaff(staff.id, staff.name, row.csrf_token, hashed, staff.role or "nurse"), False


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
