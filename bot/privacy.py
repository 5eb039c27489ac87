"""Deleting a patient's conversation from Rasa's tracker store (the /forget request).

Rasa 3.6 has no delete: its SQL tracker store only appends, so PUT .../tracker/events with []
leaves the stored events. This removes the sender's rows from the tracker store that the Rasa
server is configured with (the endpoints file in RASA_ENDPOINTS, default endpoints.yml), using the
same connection settings Rasa uses.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, Connection

from bot.store.db import chunks

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
_ENV = re.compile(r"\$\{([^}]+)\}")


def _expand(value):
    return _ENV.sub(lambda m: os.environ.get(m.group(1), ""), str(value)) if value is not None else None


def tracker_store_url(endpoints: Path | None = None) -> URL | None:
    path = Path(endpoints or os.environ.get("RASA_ENDPOINTS") or ROOT / "endpoints.yml")
    store = (yaml.safe_load(path.read_text()) or {}).get("tracker_store") or {}
    if str(store.get("type", "")).upper() != "SQL":
        return None
    dialect = _expand(store.get("dialect", "sqlite"))
    db = _expand(store.get("db", "rasa.db"))
    if dialect == "sqlite":
        db_path = Path(db)
        return URL.create("sqlite", database=str(db_path if db_path.is_absolute() else ROOT / db_path))
    port = _expand(store.get("port"))
    return URL.create(
        "postgresql+psycopg2" if dialect == "postgresql" else dialect,
        username=_expand(store.get("username")) or None,
        password=_expand(store.get("password")) or None,
        host=_expand(store.get("url")) or None,
        port=int(port) if port else None,
        database=db,
    )


@contextmanager
def _events(endpoints: Path | None, purpose: str) -> Iterator[Connection | None]:
    """A transaction on Rasa's events table, or None when Rasa has stored nothing yet."""
    url = tracker_store_url(endpoints)
    if url is None:
        raise RuntimeError(f"Rasa's tracker store is not an SQL store: cannot {purpose}")
    engine = create_engine(url, future=True)
    try:
        if not inspect(engine).has_table("events"):
            yield None
            return
        with engine.begin() as c:
            yield c
    finally:
        engine.dispose()


def forget_rasa_conversation(sender_id: str, endpoints: Path | None = None) -> int:
    """Delete the sender's events; returns how many were deleted."""
    with _events(endpoints, "delete a conversation") as c:
        if c is None:
            return 0
        return c.execute(text("DELETE FROM events WHERE sender_id = :s"), {"s": sender_id}).rowcount


def purge_rasa_conversations(before_epoch: float, endpoints: Path | None = None) -> int:
    """Delete every conversation whose latest event is older than before_epoch (retention);
    returns how many conversations went. Whole conversations only: a partial tracker would
    replay as a different conversation."""
    with _events(endpoints, "apply retention to it") as c:
        if c is None:
            return 0
        sql = text("SELECT sender_id FROM events GROUP BY sender_id HAVING MAX(timestamp) < :t")
        old = [r[0] for r in c.execute(sql, {"t": before_epoch})]
        for chunk in chunks(old):
            marks = ", ".join(f":s{j}" for j in range(len(chunk)))
            c.execute(
                text(f"DELETE FROM events WHERE sender_id IN ({marks})"), {f"s{j}": v for j, v in enumerate(chunk)}
            )
        return len(old)


def rasa_conversation_events(sender_id: str, endpoints: Path | None = None) -> list[dict]:
    """Rasa's stored events of one conversation (for the patient's copy of her data)."""
    if tracker_store_url(endpoints) is None:
        return []
    with _events(endpoints, "read a conversation") as c:
        if c is None:
            return []
        out = []
        for (data,) in c.execute(text("SELECT data FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender_id}):
            try:
                out.append(json.loads(data))
            except (TypeError, ValueError):
                out.append({"unreadable": True})
        return out
