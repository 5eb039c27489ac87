"""The staff roster: add, deactivate, reactivate, reset a password, change a Telegram id or role,
list. Each change is one transaction with its audit row, and a change that matters for access
(deactivation, a new password, a new role) ends the person's dashboard sessions at once; the
Telegram buttons check `active` on every press, so a deactivated nurse's buttons are refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.store.audit import audit
from bot.store.db import default, transaction
from bot.store.models import Staff, StaffSession, utcnow

from .passwords import check_new_password, hash_password

ROLES = ("nurse", "admin")


@dataclass(frozen=True)
class Member:
    """A roster entry as plain data (no password hash, no TOTP secret)."""

    id: int
    name: str
    role: str
    active: bool
    telegram_user_id: int | None
    has_password: bool
    has_totp: bool
    created_at: dt.datetime
    deactivated_at: dt.datetime | None


def _member(st: Staff) -> Member:
    return Member(
        st.id,
        st.name,
        st.role or "nurse",
        bool(st.active),
        st.telegram_user_id,
        bool(st.password_hash),
        bool(st.totp_secret),
        st.created_at,
        st.deactivated_at,
    )


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name or len(name) > 120:
        raise ValueError("give the nurse's name (up to 120 characters)")
    return name


def _find(s: Session, name: str) -> Staff:
    staff = s.execute(select(Staff).where(Staff.name == _clean_name(name))).scalars().first()
    if staff is None:
        raise LookupError(f"nobody called {_clean_name(name)!r} is on the roster")
    return staff


def _end_sessions(s: Session, staff_id: int) -> int:
    return s.execute(delete(StaffSession).where(StaffSession.staff_id == staff_id)).rowcount or 0


def add_staff(
    name: str, telegram_user_id: int | None, password: str, sessions=None, role: str = "nurse", actor: str = "cli"
) -> Staff:
    name = _clean_name(name)
    check_new_password(password)
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    sessions = sessions or default().sessions
    try:
        with transaction(sessions) as s:
            staff = Staff(
                name=name, telegram_user_id=telegram_user_id, password_hash=hash_password(password), role=role
            )
            s.add(staff)
            s.flush()
            audit(
                s,
                "staff_added",
                actor_type="system",
                actor_id=actor,
                staff_id=staff.id,
                telegram_user_id=telegram_user_id,
                role=role,
            )
            return staff
    except IntegrityError as e:
        raise ValueError("a staff member with that name or Telegram id already exists") from e


def _change(
    sessions: sessionmaker | None, name: str, action: str, actor: str, apply, end_sessions: bool, **detail
) -> Member:
    sessions = sessions or default().sessions
    try:
        with transaction(sessions) as s:
            staff = _find(s, name)
            apply(staff)
            ended = _end_sessions(s, staff.id) if end_sessions else 0
            audit(
                s,
                action,
                actor_type="system" if actor == "cli" else "staff",
                actor_id=actor,
                staff_id=staff.id,
                sessions_ended=ended,
                **detail,
            )
            s.flush()
            return _member(staff)
    except IntegrityError as e:
        raise ValueError("another staff member already has that Telegram id") from e


def deactivate(name: str, sessions=None, actor: str = "cli") -> Member:
    def apply(st: Staff) -> None:
        st.active, st.deactivated_at = False, utcnow()

    return _change(sessions, name, "staff_deactivated", actor, apply, True)


def reactivate(name: str, sessions=None, actor: str = "cli") -> Member:
    def apply(st: Staff) -> None:
        st.active, st.deactivated_at = True, None

    return _change(sessions, name, "staff_reactivated", actor, apply, False)


def set_password(name: str, password: str, sessions=None, actor: str = "cli") -> Member:
    check_new_password(password)
    hashed = hash_password(password)

    def apply(st: Staff) -> None:
        st.password_hash = hashed

    return _change(sessions, name, "staff_password_set", actor, apply, True)


def set_telegram(name: str, telegram_user_id: int | None, sessions=None, actor: str = "cli") -> Member:
    def apply(st: Staff) -> None:
        st.telegram_user_id = telegram_user_id

    return _change(sessions, name, "staff_telegram_set", actor, apply, False, telegram_user_id=telegram_user_id)


def set_role(name: str, role: str, sessions=None, actor: str = "cli") -> Member:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")

    def apply(st: Staff) -> None:
        st.role = role

    return _change(sessions, name, "staff_role_set", actor, apply, True, role=role)


def set_totp(name: str, secret: str | None, sessions=None, actor: str = "cli") -> Member:
    """Turn the dashboard's second factor on (a base32 secret) or off (None)."""

    def apply(st: Staff) -> None:
        st.totp_secret = secret

    return _change(sessions, name, "staff_totp_set", actor, apply, True, enabled=secret is not None)


def roster(sessions=None) -> list[Member]:
    sessions = sessions or default().sessions
    with sessions() as s:
        return [_member(st) for st in s.execute(select(Staff).order_by(Staff.name)).scalars()]
