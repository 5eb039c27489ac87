"""Patients' contacts and consent, the forgetting of a patient's data, and the Telegram inbox.

Channels call these functions and never touch the tables. A patient appears only under the opaque
conversation id their channel derives (the Rasa sender id); the channel's own address (a Telegram
chat id) is stored in `patient_contacts` only once the patient has agreed that the conversation is
stored, so the escalation timers can reach them ("nobody has picked up yet: call us directly").

Forgetting deletes the contact and the consent, marks the conversation forgotten and deletes the
webhook updates stored for that chat. Escalations are clinical records the clinic keeps: they are
not deleted (the patient is told so). The audit log records consent and forgetting (opaque id only).

The Telegram inbox (`telegram_updates`) holds webhook updates between Telegram's POST and their
processing: stored and committed before Telegram gets its 200, deduplicated by update_id, processed
in update_id order, and reduced to {update_id, chat_id} once processed (no message text is kept).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from .db import transaction, with_retries
from .models import Conversation, Escalation, PatientContact, TelegramUpdate, utcnow
from .service import audit

TELEGRAM = "telegram"


def _sessions(sessions: Optional[sessionmaker]) -> sessionmaker:
    if sessions is not None:
        return sessions
    from .db import default
    return default().sessions


@dataclass(frozen=True)
class Contact:
    conversation_id: str
    channel: str
    address: str
    consent_at: Optional[dt.datetime]

    @property
    def consented(self) -> bool:
        return self.consent_at is not None


@dataclass(frozen=True)
class Forgotten:
    contact_deleted: bool
    updates_deleted: int
    escalations_kept: int          # clinical records the clinic keeps


def _ensure_conversation(s, conversation_id: str, channel: str, now: dt.datetime) -> Conversation:
    conv = s.get(Conversation, conversation_id)
    if conv is None:
        conv = Conversation(id=conversation_id, channel=channel, created_at=now)
        s.add(conv)
        s.flush()
    return conv


def _as_contact(row: Optional[PatientContact]) -> Optional[Contact]:
    if row is None:
        return None
    return Contact(row.conversation_id, row.channel, row.address, row.consent_at)


# -- contacts and consent ---------------------------------------------------------------------------
def _contact_row(s, conversation_id: str, channel: str, address: str) -> PatientContact:
    row = s.get(PatientContact, conversation_id)
    if row is None:
        # an address moves with its patient: drop a stale row that held it
        s.execute(delete(PatientContact).where(PatientContact.channel == channel,
                                               PatientContact.address == str(address)))
        row = PatientContact(conversation_id=conversation_id, channel=channel, address=str(address))
        s.add(row)
    row.channel, row.address = channel, str(address)
    return row


def upsert_contact(conversation_id: str, channel: str, address: str,
                   sessions: Optional[sessionmaker] = None) -> Contact:
    """Create or update how to reach the conversation's patient (keeps an existing consent)."""
    def run() -> Contact:
        now = utcnow()
        with transaction(_sessions(sessions)) as s:
            _ensure_conversation(s, conversation_id, channel, now)
            row = _contact_row(s, conversation_id, channel, address)
            s.flush()
            return _as_contact(row)
    return with_retries(run, what="saving a patient contact")


def record_consent(conversation_id: str, channel: str, address: str, via: str = "",
                   sessions: Optional[sessionmaker] = None) -> Contact:
    """The patient agreed that the conversation is stored: contact + consent time, audited."""
    def run() -> Contact:
        now = utcnow()
        with transaction(_sessions(sessions)) as s:
            _ensure_conversation(s, conversation_id, channel, now)
            row = _contact_row(s, conversation_id, channel, address)
            first = row.consent_at is None
            if first:
                row.consent_at = now
            audit(s, "patient_consent_given" if first else "patient_consent_repeated",
                  actor_type="patient", actor_id=conversation_id, channel=channel, via=via or channel)
            s.flush()
            return _as_contact(row)
    return with_retries(run, what="recording consent")


def record_refusal(conversation_id: str, channel: str, sessions: Optional[sessionmaker] = None) -> None:
    """The patient declined: nothing about them is stored but this audit line (opaque id)."""
    def run() -> None:
        with transaction(_sessions(sessions)) as s:
            audit(s, "patient_consent_declined", actor_type="patient", actor_id=conversation_id,
                  channel=channel)
    with_retries(run, what="recording a refusal")


def lookup(conversation_id: str, sessions: Optional[sessionmaker] = None) -> Optional[Contact]:
    def run() -> Optional[Contact]:
        with _sessions(sessions)() as s:
            return _as_contact(s.get(PatientContact, conversation_id))
    return with_retries(run, what="looking up a patient contact")


def lookup_address(channel: str, address: str, sessions: Optional[sessionmaker] = None) -> Optional[Contact]:
    def run() -> Optional[Contact]:
        with _sessions(sessions)() as s:
            return _as_contact(s.execute(select(PatientContact).where(
                PatientContact.channel == channel, PatientContact.address == str(address))).scalars().first())
    return with_retries(run, what="looking up a patient contact")


def has_consent(conversation_id: str, sessions: Optional[sessionmaker] = None) -> bool:
    contact = lookup(conversation_id, sessions)
    return bool(contact and contact.consented)


def forget(conversation_id: str, channel: str, address: Optional[str] = None,
           detail: Optional[Dict[str, Any]] = None, sessions: Optional[sessionmaker] = None) -> Forgotten:
    """Delete the patient's contact and consent and (for Telegram) the stored updates of their chat;
    mark the conversation forgotten; audit it. Escalations (clinical records) are kept."""
    def run() -> Forgotten:
        now = utcnow()
        with transaction(_sessions(sessions)) as s:
            contact = s.get(PatientContact, conversation_id)
            chat = str(address) if address is not None else (contact.address if contact else None)
            contact_deleted = contact is not None
            if contact is not None:
                s.delete(contact)
            if address is not None:
                s.execute(delete(PatientContact).where(PatientContact.channel == channel,
                                                       PatientContact.address == str(address)))
            updates_deleted = 0
            if channel == TELEGRAM and chat is not None:
                ids = [uid for uid, payload in s.execute(select(TelegramUpdate.update_id, TelegramUpdate.payload))
                       if _chat_of(payload) == chat]
                for chunk in _chunks(ids, 500):
                    s.execute(delete(TelegramUpdate).where(TelegramUpdate.update_id.in_(chunk)))
                updates_deleted = len(ids)
            conv = s.get(Conversation, conversation_id)
            if conv is not None:
                conv.forgotten_at = now
            kept = s.execute(select(func.count()).select_from(Escalation)
                             .where(Escalation.conversation_id == conversation_id)).scalar_one()
            audit(s, "patient_data_forgotten", actor_type="patient", actor_id=conversation_id, channel=channel,
                  contact_deleted=contact_deleted, updates_deleted=updates_deleted, escalations_kept=kept,
                  **(detail or {}))
            return Forgotten(contact_deleted, updates_deleted, kept)
    return with_retries(run, what="forgetting a patient")


# -- the Telegram webhook inbox ---------------------------------------------------------------------
def _chat_of(payload: Any) -> Optional[str]:
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


def _chunks(items: List[Any], n: int) -> Iterable[List[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def store_update(update_id: int, payload: Dict[str, Any], sessions: Optional[sessionmaker] = None) -> bool:
    """Store a webhook update (committed on return). False when that update_id was already stored."""
    factory = _sessions(sessions)

    def run() -> bool:
        with factory() as s:
            if s.get(TelegramUpdate, update_id) is not None:
                return False
            s.add(TelegramUpdate(update_id=update_id, payload=payload, received_at=utcnow(), attempts=0))
            try:
                s.commit()
            except IntegrityError:          # the same update delivered twice at once
                s.rollback()
                return False
            return True
    return with_retries(run, what="storing a Telegram update")


def pending_updates(limit: int = 50, exclude: Iterable[int] = (), max_attempts: int = 5,
                    sessions: Optional[sessionmaker] = None) -> List[Tuple[int, Dict[str, Any]]]:
    """Stored updates not processed yet, oldest update_id first."""
    skip = list(exclude)

    def run() -> List[Tuple[int, Dict[str, Any]]]:
        with _sessions(sessions)() as s:
            stmt = (select(TelegramUpdate.update_id, TelegramUpdate.payload)
                    .where(TelegramUpdate.processed_at.is_(None), TelegramUpdate.attempts < max_attempts)
                    .order_by(TelegramUpdate.update_id).limit(limit + len(skip)))
            rows = [(uid, payload) for uid, payload in s.execute(stmt) if uid not in skip]
            return rows[:limit]
    return with_retries(run, what="reading stored Telegram updates")


def mark_update_processed(update_id: int, sessions: Optional[sessionmaker] = None) -> None:
    """Processed: keep only {update_id, chat_id} (for deduplication and /forget), not the text."""
    def run() -> None:
        with transaction(_sessions(sessions)) as s:
            row = s.get(TelegramUpdate, update_id)
            if row is None:                 # forgotten while it was processed (/forget itself)
                return
            chat = _chat_of(row.payload)
            row.payload = {"update_id": update_id, "chat_id": chat}
            row.processed_at = utcnow()
            row.attempts = (row.attempts or 0) + 1
    with_retries(run, what="marking a Telegram update processed")


def record_update_failure(update_id: int, max_attempts: int = 5,
                          sessions: Optional[sessionmaker] = None) -> int:
    """Processing raised: count the attempt; after max_attempts the update is given up (and reduced)."""
    def run() -> int:
        with transaction(_sessions(sessions)) as s:
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


def prune_updates(older_than: dt.timedelta, sessions: Optional[sessionmaker] = None) -> int:
    """Delete processed updates received before now - older_than (Telegram stops redelivering)."""
    def run() -> int:
        with transaction(_sessions(sessions)) as s:
            result = s.execute(delete(TelegramUpdate).where(TelegramUpdate.processed_at.is_not(None),
                                                            TelegramUpdate.received_at < utcnow() - older_than))
            return result.rowcount or 0
    return with_retries(run, what="pruning Telegram updates")


def stored_update_ids(chat_id: Optional[int | str] = None, sessions: Optional[sessionmaker] = None) -> List[int]:
    """update_ids stored (for one chat, if given), for inspection and tests."""
    def run() -> List[int]:
        with _sessions(sessions)() as s:
            rows = s.execute(select(TelegramUpdate.update_id, TelegramUpdate.payload)
                             .order_by(TelegramUpdate.update_id)).all()
        return [uid for uid, payload in rows if chat_id is None or _chat_of(payload) == str(chat_id)]
    return with_retries(run, what="reading stored Telegram updates")


def update_state(update_id: int, sessions: Optional[sessionmaker] = None) -> Optional[Dict[str, Any]]:
    def run() -> Optional[Dict[str, Any]]:
        with _sessions(sessions)() as s:
            row = s.get(TelegramUpdate, update_id)
            if row is None:
                return None
            return {"update_id": row.update_id, "payload": row.payload, "processed_at": row.processed_at,
                    "attempts": row.attempts}
    return with_retries(run, what="reading a Telegram update")
