"""The staff roster and dashboard passwords (scrypt from the standard library)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Optional

from sqlalchemy.exc import IntegrityError

from .db import default, transaction
from .models import Staff
from .service import audit

SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1, "dklen": 32}
MIN_PASSWORD = 12


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: Optional[str]) -> bool:
    try:
        scheme, salt, digest = (stored or "").split("$")
    except ValueError:
        hashlib.scrypt(password.encode(), salt=b"x" * 16, **SCRYPT)   # same work either way
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), **SCRYPT)
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def add_staff(name: str, telegram_user_id: Optional[int], password: str, sessions=None) -> Staff:
    name = " ".join(name.split())
    if not name or len(name) > 120:
        raise ValueError("give the nurse's name (up to 120 characters)")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the dashboard password must have at least {MIN_PASSWORD} characters")
    sessions = sessions or default().sessions
    try:
        with transaction(sessions) as s:
            staff = Staff(name=name, telegram_user_id=telegram_user_id, password_hash=hash_password(password))
            s.add(staff)
            s.flush()
            audit(s, "staff_added", actor_type="system", actor_id="cli", staff_id=staff.id,
                  telegram_user_id=telegram_user_id)
            return staff
    except IntegrityError as e:
        raise ValueError("a staff member with that name or Telegram id already exists") from e
