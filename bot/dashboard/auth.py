"""Nurses' logins for the dashboard: the password (and second factor) check, rehash on login, and
the audit of every outcome. Blocking database code: call it in a thread. Sessions live in
bot.staff.sessions, the login throttle in bot.staff.throttle."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import sessionmaker

from bot.staff.passwords import hash_password, needs_rehash, verify_password
from bot.staff.sessions import CurrentStaff
from bot.staff.throttle import name_key
from bot.store.audit import audit
from bot.store.db import transaction
from bot.store.models import Staff

MAX_NAME = 120
MAX_PASSWORD = 1024


def normalise_name(name: str) -> str:
    return " ".join((name or "").split())


def check_password(
    sessions: sessionmaker, name: str, password: str, code: str | None = None
) -> tuple[Staff | None, int | None]:
    """(the active staff member, None) on success, else (None, the id the name belongs to or None).

    The same scrypt work is done whether or not the name exists, is active, or has a password.
    A nurse with a second factor also needs the current code. A hash made at an older cost is
    replaced on success (rehash on login).
    """
    with sessions() as s:
        rows = (
            s.execute(select(Staff).where(or_(Staff.name == name, func.lower(Staff.name) == name.lower())))
            .scalars()
            .all()
        )
    exact = [r for r in rows if r.name == name]
    staff = exact[0] if exact else (rows[0] if len(rows) == 1 else None)
    ok = verify_password(password, staff.password_hash if staff is not None else None)
    if staff is not None and staff.active and ok and _second_factor_ok(staff, code):
        if needs_rehash(staff.password_hash):
            _rehash(sessions, staff.id, password)
        return staff, None
    return None, (staff.id if staff is not None else None)


def _second_factor_ok(staff: Staff, code: str | None) -> bool:
    if not staff.totp_secret:
        return True
    import pyotp

    return bool(code) and pyotp.TOTP(staff.totp_secret).verify(str(code).strip().replace(" ", ""), valid_window=1)


def _rehash(sessions: sessionmaker, staff_id: int, password: str) -> None:
    with transaction(sessions) as s:
        row = s.get(Staff, staff_id)
        row.password_hash = hash_password(password)
        audit(s, "password_rehashed", actor_type="staff", actor_id=str(staff_id))


def record_login_failure(
    sessions: sessionmaker,
    name: str,
    staff_id: int | None,
    reason: str,
    client: str | None,
    wait_seconds: float | None = None,
) -> None:
    """A failed or refused login. A name that is on no roster is kept only as a hash: what people
    type into the name field is sometimes their password."""
    actor = (
        {"actor_type": "staff", "actor_id": str(staff_id)}
        if staff_id is not None
        else {"actor_type": "unknown", "actor_id": None}
    )
    with transaction(sessions) as s:
        audit(
            s,
            "login_failed",
            name_hash=name_key(name),
            reason=reason,
            client=client,
            wait_seconds=round(wait_seconds) if wait_seconds else None,
            **actor,
        )


def record(
    sessions: sessionmaker, action: str, staff: CurrentStaff | None, escalation_id: str | None = None, **detail
) -> None:
    """One audit row for something done on the dashboard."""
    actor = (
        {"actor_type": "staff", "actor_id": str(staff.id)}
        if staff is not None
        else {"actor_type": "unknown", "actor_id": None}
    )
    with transaction(sessions) as s:
        audit(s, action, escalation_id=escalation_id, **actor, **detail)
