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
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import sessionmaker

from bot.store import telegram_inbox
from bot.store.audit import audit
from bot.store.db import sessions_or_default, transaction, with_retries
from bot.store.models import AuditEntry, Conversation, Escalation, PatientContact, utcnow

TELEGRAM = "telegram"


@dataclass(frozen=True)
class Contact:
    conversation_id: str
    channel: str
    address: str
    consent_at: dt.datetime | None

    @property
    def consented(self) -> bool:
        return self.consent_at is not None


@dataclass(frozen=True)
class Forgotten:
    contact_deleted: bool
    updates_deleted: int
    escalations_kept: int  # clinical records the clinic keeps


def _ensure_conversation(s, conversation_id: str, channel: str, now: dt.datetime) -> Conversation:
    conv = s.get(Conversation, conversation_id)
    if conv is None:
        conv = Conversation(id=conversation_id, channel=channel, created_at=now)
        s.add(conv)
        s.flush()
    return conv


def _as_contact(row: PatientContact | None) -> Contact | None:
    if row is None:
        return None
    return Contact(row.conversation_id, row.channel, row.address, row.consent_at)


# -- contacts and consent ---------------------------------------------------------------------------
def _contact_row(s, conversation_id: str, channel: str, address: str) -> PatientContact:
    row = s.get(PatientContact, conversation_id)
    if row is None:
        # an address moves with its patient: drop a stale row that held it
        s.execute(
            delete(PatientContact).where(PatientContact.channel == channel, PatientContact.address == str(address))
        )
        row = PatientContact(conversation_id=conversation_id, channel=channel, address=str(address))
        s.add(row)
    row.channel, row.address = channel, str(address)
    return row


def upsert_contact(conversation_id: str, channel: str, address: str, sessions: sessionmaker | None = None) -> Contact:
    """Create or update how to reach the conversation's patient (keeps an existing consent)."""

    def run() -> Contact:
        now = utcnow()
        with transaction(sessions_or_default(sessions)) as s:
            _ensure_conversation(s, conversation_id, channel, now)
            row = _contact_row(s, conversation_id, channel, address)
            s.flush()
            contact = _as_contact(row)
            assert contact is not None
            return contact

    return with_retries(run, what="saving a patient contact")


def record_consent(
    conversation_id: str, channel: str, address: str, via: str = "", sessions: sessionmaker | None = None
) -> Contact:
    """The patient agreed that the conversation is stored: contact + consent time, audited."""

    def run() -> Contact:
        now = utcnow()
        with transaction(sessions_or_default(sessions)) as s:
            _ensure_conversation(s, conversation_id, channel, now)
            row = _contact_row(s, conversation_id, channel, address)
            first = row.consent_at is None
            if first:
                row.consent_at = now
            audit(
                s,
                "patient_consent_given" if first else "patient_consent_repeated",
                actor_type="patient",
                actor_id=conversation_id,
                channel=channel,
                via=via or channel,
            )
            s.flush()
            contact = _as_contact(row)
            assert contact is not None
            return contact

    return with_retries(run, what="recording consent")


def record_refusal(conversation_id: str, channel: str, sessions: sessionmaker | None = None) -> None:
    """The patient declined: nothing about them is stored but this audit line (opaque id)."""

    def run() -> None:
        with transaction(sessions_or_default(sessions)) as s:
            audit(s, "patient_consent_declined", actor_type="patient", actor_id=conversation_id, channel=channel)

    with_retries(run, what="recording a refusal")


def lookup(conversation_id: str, sessions: sessionmaker | None = None) -> Contact | None:
    def run() -> Contact | None:
        with sessions_or_default(sessions)() as s:
            return _as_contact(s.get(PatientContact, conversation_id))

    return with_retries(run, what="looking up a patient contact")


def lookup_address(channel: str, address: str, sessions: sessionmaker | None = None) -> Contact | None:
    def run() -> Contact | None:
        with sessions_or_default(sessions)() as s:
            return _as_contact(
                s.execute(
                    select(PatientContact).where(
                        PatientContact.channel == channel, PatientContact.address == str(address)
                    )
                )
                .scalars()
                .first()
            )

    return with_retries(run, what="looking up a patient contact")


def has_consent(conversation_id: str, sessions: sessionmaker | None = None) -> bool:
    contact = lookup(conversation_id, sessions)
    return bool(contact and contact.consented)


def forget(
    conversation_id: str,
    channel: str,
    address: str | None = None,
    detail: dict[str, Any] | None = None,
    sessions: sessionmaker | None = None,
) -> Forgotten:
    """Delete the patient's contact and consent and (for Telegram) the stored updates of their chat;
    mark the conversation forgotten; audit it. Escalations (clinical records) are kept."""

    def run() -> Forgotten:
        now = utcnow()
        with transaction(sessions_or_default(sessions)) as s:
            contact = s.get(PatientContact, conversation_id)
            chat = str(address) if address is not None else (contact.address if contact else None)
            contact_deleted = contact is not None
            if contact is not None:
                s.delete(contact)
            if address is not None:
                s.execute(
                    delete(PatientContact).where(
                        PatientContact.channel == channel, PatientContact.address == str(address)
                    )
                )
            updates_deleted = 0
            if channel == TELEGRAM and chat is not None:
                updates_deleted = telegram_inbox.delete_chat(s, chat)
            conv = s.get(Conversation, conversation_id)
            if conv is not None:
                conv.forgotten_at = now
            kept = s.execute(
                select(func.count()).select_from(Escalation).where(Escalation.conversation_id == conversation_id)
            ).scalar_one()
            audit(
                s,
                "patient_data_forgotten",
                actor_type="patient",
                actor_id=conversation_id,
                channel=channel,
                contact_deleted=contact_deleted,
                updates_deleted=updates_deleted,
                escalations_kept=kept,
                **(detail or {}),
            )
            return Forgotten(contact_deleted, updates_deleted, kept)

    return with_retries(run, what="forgetting a patient")


# -- the patient's rights: a copy of everything held, and what forgetting leaves ----------------------
def export(key: str, sessions: sessionmaker | None = None, rasa_events: Any = None) -> dict[str, Any] | None:
    """Everything held about one conversation (by its id or an escalation's reference), as plain
    JSON-ready data; audited. rasa_events(conversation_id) -> list adds Rasa's own copy."""
    factory = sessions_or_default(sessions)
    with transaction(factory) as s:
        esc_by_ref = s.get(Escalation, key) if key.startswith("H-") else None
        conversation_id = esc_by_ref.conversation_id if esc_by_ref is not None else key
        conv = s.get(Conversation, conversation_id)
        if conv is None:
            return None
        contact = s.get(PatientContact, conversation_id)
        escalations = (
            s.execute(
                select(Escalation).where(Escalation.conversation_id == conversation_id).order_by(Escalation.created_at)
            )
            .scalars()
            .all()
        )
        refs = [e.id for e in escalations]
        audit_rows = (
            s.execute(
                select(AuditEntry)
                .where((AuditEntry.actor_id == conversation_id) | (AuditEntry.escalation_id.in_(refs or [""])))
                .order_by(AuditEntry.id)
            )
            .scalars()
            .all()
        )
        data: dict[str, Any] = {
            "exported_at": utcnow().isoformat(),
            "conversation": {
                "id": conv.id,
                "channel": conv.channel,
                "created_at": _iso(conv.created_at),
                "forgotten_at": _iso(conv.forgotten_at),
            },
            "contact": None
            if contact is None
            else {"channel": contact.channel, "address": contact.address, "consent_at": _iso(contact.consent_at)},
            "escalations": [_escalation_data(e) for e in escalations],
            "audit": [
                {
                    "at": _iso(a.at),
                    "action": a.action,
                    "actor_type": a.actor_type,
                    "escalation_id": a.escalation_id,
                    "detail": a.detail,
                }
                for a in audit_rows
            ],
        }
        audit(
            s,
            "patient_data_exported",
            actor_type="system",
            actor_id="cli",
            conversation=conversation_id,
            escalations=len(refs),
        )
    if rasa_events is not None:
        data["rasa_events"] = rasa_events(conversation_id)
    return data


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _escalation_data(e: Escalation) -> dict[str, Any]:
    return {
        "reference": e.id,
        "level": e.level,
        "status": e.status,
        "summary": e.summary,
        "patient_words": e.patient_words,
        "transcript": e.transcript,
        "findings": e.findings,
        "reasons": e.reasons,
        "days_since_procedure": e.days_since_procedure,
        "created_at": _iso(e.created_at),
        "acknowledged_at": _iso(e.acknowledged_at),
        "resolved_at": _iso(e.resolved_at),
        "resolution_note": e.resolution_note,
    }
