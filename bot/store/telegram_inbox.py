"""The Telegram webhook's inbox: updates stored before Telegram gets its 200 (deduplicated by
update_id), processed from here, retried, pruned; and deleted per chat when a patient is forgotten."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .audit import audit
from .db import chunks, sessions_or_default, transaction, with_retries
from .models import TelegramUpdate, utcnow


def delete_chat(s: Session, chat: str) -> int:
    """Delete the stored updates of one chat (inside the caller's transaction); how many."""
    ids = [
        uid
        for uid, payload in s.execute(select(TelegramUpdate.update_id, TelegramUpdate.payload))
        if _chat_of(payload) == chat
    ]
    for chunk in chunks(ids):
        s.execute(delete(TelegramUpdate).where(TelegramUpdate.update_id.in_(chunk)))
    return len(ids)


def _chat_of(payload: Any) -> str | None:
    """The chat id of a stored update (a full update, or the reduced {update_id, chat_id})."""
    if not isinstance(payload, dict):
        return None
    if payload.get("chat_id") is not None:
        return str(payload["chat_id"])
    for key, value in payload.items():
        if not isinstance(value, dict):
            continue
        chat = value.get("chat") or (value.get("message") or {}).get("chat")
        if isinstance(chat, dict) and chat.get("id") is not None:
            return str(chat["id"])
        sender = value.get("from")
        if key in ("callback_query", "inline_query", "my_chat_member") and isinstance(sender, dict):
            return str(sender.get("id"))
    return None


def store_update(update_id: int, payload: dict[str, Any], sessions: sessionmaker | None = None) -> bool:
    """Store a webhook update (committed on return). False when that update_id was already stored."""
    factory = sessions_or_default(sessions)

    def run() -> bool:
        with factory() as s:
            if s.get(TelegramUpdate, update_id) is not None:
                return False
            s.add(TelegramUpdate(update_id=update_id, payload=payload, received_at=utcnow(), attempts=0))
            try:
                s.commit()
            except IntegrityError:  # the same update delivered twice at once
                s.rollback()
                return False
            return True

    return with_retries(run, what="storing a Telegram update")


def pending_updates(
    limit: int = 50, exclude: Iterable[int] = (), max_attempts: int = 5, sessions: sessionmaker | None = None
) -> list[tuple[int, dict[str, Any]]]:
    """Stored updates not processed yet, oldest update_id first."""
    skip = list(exclude)

    def run() -> list[tuple[int, dict[str, Any]]]:
        with sessions_or_default(sessions)() as s:
            stmt = (
                select(TelegramUpdate.update_id, TelegramUpdate.payload)
                .where(TelegramUpdate.processed_at.is_(None), TelegramUpdate.attempts < max_attempts)
                .order_by(TelegramUpdate.update_id)
                .limit(limit + len(skip))
            )
            rows = [(uid, payload) for uid, payload in s.execute(stmt) if uid not in skip]
            return rows[:limit]

    return with_retries(run, what="reading stored Telegram updates")


def mark_update_processed(update_id: int, sessions: sessionmaker | None = None) -> None:
    """Processed: keep only {update_id, chat_id} (for deduplication and /forget), not the text."""

    def run() -> None:
        with transaction(sessions_or_default(sessions)) as s:
            row = s.get(TelegramUpdate, update_id)
            if row is None:  # forgotten while it was processed (/forget itself)
                return
            chat = _chat_of(row.payload)
            row.payload = {"update_id": update_id, "chat_id": chat}
            row.processed_at = utcnow()
            row.attempts = (row.attempts or 0) + 1

    with_retries(run, what="marking a Telegram update processed")


def record_update_failure(update_id: int, max_attempts: int = 5, sessions: sessionmaker | None = None) -> int:
    """Processing raised: count the attempt; after max_attempts the update is given up (and reduced)."""

    def run() -> int:
        with transaction(sessions_or_default(sessions)) as s:
            row = s.get(TelegramUpdate, update_id)
            if row is None:
                return 0
            row.attempts = (row.attempts or 0) + 1
            if row.attempts >= max_attempts:
                row.payload = {"update_id": update_id, "chat_id": _chat_of(row.payload), "gave_up": True}
                row.processed_at = utcnow()
                audit(s, "telegram_update_given_up", update_id=update_id, attempts=row.attempts)
            return row.attempts

    return with_retries(run, what="recording a failed Telegram update")


def prune_updates(older_than: dt.timedelta, sessions: sessionmaker | None = None) -> int:
    """Delete processed updates received before now - older_than (Telegram stops redelivering)."""

    def run() -> int:
        with transaction(sessions_or_default(sessions)) as s:
            result = s.execute(
                delete(TelegramUpdate).where(
                    TelegramUpdate.processed_at.is_not(None), TelegramUpdate.received_at < utcnow() - older_than
                )
            )
            return result.rowcount or 0

    return with_retries(run, what="pruning Telegram updates")


def stored_update_ids(chat_id: int | str | None = None, sessions: sessionmaker | None = None) -> list[int]:
    """update_ids stored (for one chat, if given), for inspection and tests."""

    def run() -> list[int]:
        with sessions_or_default(sessions)() as s:
            rows = s.execute(
                select(TelegramUpdate.update_id, TelegramUpdate.payload).order_by(TelegramUpdate.update_id)
            ).all()
        return [uid for uid, payload in rows if chat_id is None or _chat_of(payload) == str(chat_id)]

    return with_retries(run, what="reading stored Telegram updates")


def update_state(update_id: int, sessions: sessionmaker | None = None) -> dict[str, Any] | None:
    def run() -> dict[str, Any] | None:
        with sessions_or_default(sessions)() as s:
            row = s.get(TelegramUpdate, update_id)
            if row is None:
                return None
            return {
                "update_id": row.update_id,
                "payload": row.payload,
                "processed_at": row.processed_at,
                "attempts": row.attempts,
            }

    return with_retries(run, what="reading a Telegram update")
