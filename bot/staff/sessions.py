"""Nurses' dashboard sessions: a random 32-byte token in a cookie; the database keeps only its
sha256, with a per-session CSRF token and the times used for the idle and absolute timeouts. A
session is checked against the roster on every request, so deactivating a nurse ends it at once
(bot.staff.roster also deletes her sessions)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, or_
from sqlalchemy.orm import sessionmaker

from bot.store.audit import audit
from bot.store.db import transaction
from bot.store.models import Staff, StaffSession


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 32 random bytes, 43 characters


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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


def start_session(
    sessions: sessionmaker,
    staff: Staff,
    now: dt.datetime,
    replaces: str | None,
    idle: dt.timedelta,
    absolute: dt.timedelta,
    client: str | None,
) -> tuple[str, str]:
    """A new session for the nurse (any session the browser had is ended); returns (token, csrf)."""
    token, csrf = new_token(), new_token()
    with transaction(sessions) as s:
        if replaces:
            s.execute(delete(StaffSession).where(StaffSession.token_hash == replaces))
        s.execute(
            delete(StaffSession).where(
                or_(StaffSession.last_seen_at < now - idle, StaffSession.created_at < now - absolute)
            )
        )
        s.add(
            StaffSession(
                token_hash=token_hash(token), staff_id=staff.id, csrf_token=csrf, created_at=now, last_seen_at=now
            )
        )
        audit(s, "login", actor_type="staff", actor_id=str(staff.id), client=client)
    return token, csrf


def load_session(
    sessions: sessionmaker, hashed: str, now: dt.datetime, idle: dt.timedelta, absolute: dt.timedelta, touch: bool
) -> tuple[CurrentStaff | None, bool]:
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


def end_session(sessions: sessionmaker, staff: CurrentStaff, client: str | None) -> None:
    with transaction(sessions) as s:
        s.execute(delete(StaffSession).where(StaffSession.token_hash == staff.token_hash))
        audit(s, "logout", actor_type="staff", actor_id=str(staff.id), client=client)
