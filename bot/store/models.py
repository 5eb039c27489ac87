"""Tables of the escalation package (SQLAlchemy 1.4, 2.0 style). Alembic migrations own the schema.

Patients appear only under opaque conversation ids; what a patient wrote is stored because nurses
need it, and is shown only to authenticated staff (escaped). The audit log is append-only (a
database trigger refuses UPDATE and DELETE, see migrations).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeMeta, declarative_base

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
Base: DeclarativeMeta = declarative_base(metadata=metadata)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


OPEN_STATUSES = ("open", "notified", "acknowledged")


class Conversation(Base):
    __tablename__ = "conversations"
    id = Column(String(64), primary_key=True)  # opaque; the Rasa sender id
    channel = Column(String(32), nullable=False)  # web, rest, telegram
    created_at = Column(DateTime, nullable=False, default=utcnow)
    forgotten_at = Column(DateTime)  # the patient asked to delete their data


class Staff(Base):
    __tablename__ = "staff"
    id = Column(Integer, primary_key=True)
    name = Column(String(120), nullable=False, unique=True)
    telegram_user_id = Column(BigInteger, unique=True)
    password_hash = Column(String(255))
    active = Column(Boolean, nullable=False, default=True)
    role = Column(String(16), nullable=False, default="nurse")  # nurse | admin (roster changes)
    deactivated_at = Column(DateTime)
    totp_secret = Column(String(64))  # optional second factor (base32)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class Escalation(Base):
    __tablename__ = "escalations"
    id = Column(String(16), primary_key=True)  # short reference nurses can read out
    conversation_id = Column(String(64), ForeignKey("conversations.id"), nullable=False)
    status = Column(String(16), nullable=False, default="open")  # open notified acknowledged resolved
    level = Column(String(16), nullable=False)  # urgent | emergency
    summary = Column(Text, nullable=False, default="")
    findings = Column(JSON, nullable=False, default=list)
    reasons = Column(JSON, nullable=False, default=list)
    patient_words = Column(JSON, nullable=False, default=list)  # the red-flag messages, oldest first
    transcript = Column(JSON, nullable=False, default=list)  # recent turns: [{who, text, at}]
    days_since_procedure = Column(Float)
    contact = Column(JSON, nullable=False, default=dict)  # how to reach the patient
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow)
    notified_at = Column(DateTime)
    acknowledged_at = Column(DateTime)
    acknowledged_by = Column(Integer, ForeignKey("staff.id"))
    resolved_at = Column(DateTime)
    resolved_by = Column(Integer, ForeignKey("staff.id"))
    resolution_note = Column(Text)
    # Timers live here, not in memory: when the (latest, most urgent) alert went out; the timers
    # worker derives re-send and 'tell the patient' times from it with its own settings.
    alerted_at = Column(DateTime)
    resend_due_at = Column(DateTime)  # the next re-send (for display)
    resend_count = Column(Integer, nullable=False, default=0)
    patient_notice_due_at = Column(DateTime)  # unused since 0002 (alerted_at)
    patient_notified_at = Column(DateTime)
    staff_message = Column(JSON, nullable=False, default=dict)  # {target: that target's message ref}
    __table_args__ = (
        Index("ix_escalations_conversation_status", "conversation_id", "status"),
        Index("ix_escalations_status_created", "status", "created_at"),
    )


class OutboxMessage(Base):
    """A message that must reach someone; written in the same transaction as its cause."""

    __tablename__ = "outbox"
    id = Column(Integer, primary_key=True, autoincrement=True)
    escalation_id = Column(String(16), ForeignKey("escalations.id"), nullable=False)
    kind = Column(String(24), nullable=False)  # alert realert resend update patient_notice
    target = Column(String(32), nullable=False, default="dashboard")  # telegram email dashboard patient
    priority = Column(Integer, nullable=False, default=1)  # 0 emergency, 1 urgent, 2 updates, 3 flood
    idempotency_key = Column(String(120), nullable=False)
    payload = Column(JSON, nullable=False, default=dict)
    status = Column(String(16), nullable=False, default="pending")  # pending sending sent dead
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(DateTime, nullable=False, default=utcnow)
    claimed_at = Column(DateTime)
    last_error = Column(Text)
    result = Column(JSON)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime)
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_outbox_status_due", "status", "next_attempt_at"),
        Index("ix_outbox_status_priority_due", "status", "priority", "next_attempt_at"),
        Index("ix_outbox_target_sent", "target", "sent_at"),
    )


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id = Column(Integer, primary_key=True, autoincrement=True)
    at = Column(DateTime, nullable=False, default=utcnow)
    actor_type = Column(String(16), nullable=False)  # system staff patient unknown
    actor_id = Column(String(64))
    action = Column(String(48), nullable=False)
    escalation_id = Column(String(16))
    detail = Column(JSON, nullable=False, default=dict)
    __table_args__ = (Index("ix_audit_escalation", "escalation_id"),)


class StaffSession(Base):
    __tablename__ = "staff_sessions"
    token_hash = Column(String(64), primary_key=True)  # sha256 of the cookie value
    staff_id = Column(Integer, ForeignKey("staff.id"), nullable=False)
    csrf_token = Column(String(64), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    last_seen_at = Column(DateTime, nullable=False, default=utcnow)


class TelegramUpdate(Base):
    """Webhook updates stored before Telegram gets its 200, deduplicated by update_id."""

    __tablename__ = "telegram_updates"
    update_id = Column(BigInteger, primary_key=True)
    payload = Column(JSON, nullable=False)
    received_at = Column(DateTime, nullable=False, default=utcnow)
    processed_at = Column(DateTime)
    attempts = Column(Integer, nullable=False, default=0)


class PatientContact(Base):
    """How to reach a patient's conversation on its channel (a Telegram chat id)."""

    __tablename__ = "patient_contacts"
    conversation_id = Column(String(64), ForeignKey("conversations.id"), primary_key=True)
    channel = Column(String(32), nullable=False)
    address = Column(String(128), nullable=False)
    consent_at = Column(DateTime)
    __table_args__ = (UniqueConstraint("channel", "address"),)


class LoginAttempt(Base):
    """Failed dashboard logins per key (a hashed login name, or a client address), counted in the
    database so the limit holds across processes; `blocked_until` is the backoff."""

    __tablename__ = "login_attempts"
    key = Column(String(80), primary_key=True)
    failures = Column(Integer, nullable=False, default=0)
    window_start = Column(DateTime, nullable=False, default=utcnow)
    blocked_until = Column(DateTime)


class AuditPrunePermit(Base):
    """Present only inside the retention purge's transaction: the audit log's DELETE trigger lets
    rows go only while one exists (migration 0003)."""

    __tablename__ = "audit_prune_permits"
    id = Column(Integer, primary_key=True)
    reason = Column(String(64), nullable=False)
