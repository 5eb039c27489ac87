"""Opaque conversation ids for Telegram patients.

Rasa, the escalation records and the audit log see "tg-" + HMAC-SHA256(secret, chat id), never
the chat id. The secret comes from TELEGRAM_ID_SECRET or is generated once and kept in the data
directory (mode 0600); losing it disconnects every patient from their conversation, so back it up
with the database. The hex digest is cut to fit the 64-character conversation id columns
(61 hex digits = 244 bits).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)
PREFIX = "tg-"
ID_LENGTH = 64  # Conversation.id and PatientContact.conversation_id
SECRET_FILE = "telegram_id_secret"


def opaque_id(secret: bytes, chat_id: int | str) -> str:
    digest = hmac.new(secret, str(int(chat_id)).encode("ascii"), hashlib.sha256).hexdigest()
    return PREFIX + digest[: ID_LENGTH - len(PREFIX)]


def load_secret(data_dir: Path, env_value: str | None = None) -> bytes:
    """TELEGRAM_ID_SECRET if set, else the secret file in data_dir (created once, 0600)."""
    value = env_value if env_value is not None else os.environ.get("TELEGRAM_ID_SECRET")
    if value:
        if len(value) < 16:
            raise ValueError("TELEGRAM_ID_SECRET must be at least 16 characters")
        return value.encode("utf-8")
    path = Path(data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # written whole to a private temporary file, then linked into place: a concurrent
        # starter either wins the link or reads the complete winner
        tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
            log.info("generated the Telegram id secret in %s (keep it with the database backups)", path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); setting it to 0600", path, mode)
        os.chmod(path, 0o600)
    value = path.read_text(encoding="ascii").strip()
    if len(value) < 32:
        raise ValueError(f"{path} holds no usable secret; restore it from the backup")
    return value.encode("ascii")
