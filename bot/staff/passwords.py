"""Dashboard passwords: scrypt (standard library) at OWASP's recommended cost, rehashed on login.

Stored as "scrypt$ln$r$p$salt$digest" (ln = log2 N). The 0001 format "scrypt$salt$digest" was
N = 2^14; such hashes still verify and are upgraded at the next successful login. The cost comes
from HSG_SCRYPT_LOG2N (default 17, OWASP's N = 2^17, r = 8, p = 1: 128 MiB and ~0.3 s a check), so
a test suite may lower it; production leaves it alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

R, P, DKLEN = 8, 1, 32
LEGACY_LOG2N = 14
MIN_PASSWORD = 12


def cost() -> int:
    return int(os.environ.get("HSG_SCRYPT_LOG2N", "17"))


def _scrypt(password: str, salt: bytes, log2n: int, r: int = R, p: int = P) -> bytes:
    n = 2**log2n
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=DKLEN, maxmem=128 * r * (n + p + 2) + 1024 * 1024
    )


def hash_password(password: str) -> str:
    salt, ln = secrets.token_bytes(16), cost()
    digest = _scrypt(password, salt, ln)
    return f"scrypt${ln}${R}${P}$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def _parse(stored: str | None) -> tuple[int, int, int, bytes, bytes] | None:
    parts = (stored or "").split("$")
    try:
        if len(parts) == 3 and parts[0] == "scrypt":
            return LEGACY_LOG2N, R, P, base64.b64decode(parts[1]), base64.b64decode(parts[2])
        if len(parts) == 6 and parts[0] == "scrypt":
            return int(parts[1]), int(parts[2]), int(parts[3]), base64.b64decode(parts[4]), base64.b64decode(parts[5])
    except ValueError:
        return None
    return None


def verify_password(password: str, stored: str | None) -> bool:
    """The same scrypt work is done when there is no usable hash (an unknown name)."""
    parsed = _parse(stored)
    if parsed is None:
        _scrypt(password, b"x" * 16, cost())
        return False
    ln, r, p, salt, digest = parsed
    return hmac.compare_digest(_scrypt(password, salt, ln, r, p), digest)


def needs_rehash(stored: str | None) -> bool:
    parsed = _parse(stored)
    return parsed is None or parsed[:3] != (cost(), R, P)


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the dashboard password must have at least {MIN_PASSWORD} characters")
