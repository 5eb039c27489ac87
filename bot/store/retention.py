"""Retention: nothing about a patient is kept longer than the clinic's periods (clinic.yml
`retention`). `python -m bot purge` runs it; the timers worker runs it once a day.

What goes, oldest first, each step with its own audit row (counts only):
- delivered, dead-lettered and fanned-out outbox rows older than `outbox_days`;
- processed Telegram updates older than `telegram_updates_days`;
- resolved escalations (the clinical record, with the patient's words) older than
  `escalations_days`, with their outbox rows;
- conversations older than `conversations_days` with no escalation left: their contact, consent
  and the row itself, and Rasa's tracker events of every conversation quiet for that long;
- audit rows older than `audit_days`: first written to a gzip JSON-lines archive (its SHA-256 is
  audited), then deleted through the one path the append-only trigger allows (migration 0003).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Retention

from .audit import audit
from .db import chunks, transaction
from .models import (
    AuditEntry,
    AuditPrunePermit,
    Conversation,
    Escalation,
    OutboxMessage,
    PatientContact,
    TelegramUpdate,
    utcnow,
)

DONE_OUTBOX = ("sent", "digested", "dead", "fanned")


@dataclass
class Purged:
    counts: dict[str, int] = field(default_factory=dict)
    archive: Path | None = None


def _cutoff(now: dt.datetime, days: float) -> dt.datetime:
    return now - dt.timedelta(days=days)


def purge(
    sessions: sessionmaker,
    periods: Retention,
    archive_dir: Path,
    now: dt.datetime | None = None,
    tracker_purge: Any = None,
) -> Purged:
    """Run every step; tracker_purge(cutoff_epoch) -> int deletes Rasa's old conversations."""
    now = now or utcnow()
    out = Purged()
    with transaction(sessions) as s:
        out.counts["outbox"] = _outbox(s, _cutoff(now, periods.outbox_days))
        out.counts["telegram_updates"] = _updates(s, _cutoff(now, periods.telegram_updates_days))
        out.counts["escalations"] = _escalations(s, _cutoff(now, periods.escalations_days))
        out.counts["conversations"], out.counts["contacts"] = _conversations(
            s, _cutoff(now, periods.conversations_days)
        )
        counted: dict[str, Any] = dict(out.counts)
        audit(s, "retention_purge", actor_id="retention", **counted)
    if tracker_purge is not None:
        cutoff = _cutoff(now, periods.conversations_days).replace(tzinfo=dt.timezone.utc).timestamp()
        out.counts["rasa_conversations"] = int(tracker_purge(cutoff))
        with transaction(sessions) as s:
            audit(s, "retention_purge_rasa", actor_id="retention", conversations=out.counts["rasa_conversations"])
    out.archive, out.counts["audit_rows"] = prune_audit(sessions, _cutoff(now, periods.audit_days), archive_dir, now)
    return out


def _outbox(s: Session, before: dt.datetime) -> int:
    return (
        s.execute(
            delete(OutboxMessage).where(OutboxMessage.status.in_(DONE_OUTBOX), OutboxMessage.created_at < before)
        ).rowcount
        or 0
    )


def _updates(s: Session, before: dt.datetime) -> int:
    return (
        s.execute(
            delete(TelegramUpdate).where(TelegramUpdate.processed_at.isnot(None), TelegramUpdate.processed_at < before)
        ).rowcount
        or 0
    )


def _escalations(s: Session, before: dt.datetime) -> int:
    ids = list(
        s.execute(
            select(Escalation.id).where(Escalation.status == "resolved", Escalation.resolved_at < before)
        ).scalars()
    )
    for chunk in chunks(ids):
        s.execute(delete(OutboxMessage).where(OutboxMessage.escalation_id.in_(chunk)))
        s.execute(delete(Escalation).where(Escalation.id.in_(chunk)))
    return len(ids)


def _conversations(s: Session, before: dt.datetime) -> tuple[int, int]:
    has_escalation = select(Escalation.conversation_id).distinct()
    ids = list(
        s.execute(
            select(Conversation.id).where(Conversation.created_at < before, Conversation.id.not_in(has_escalation))
        ).scalars()
    )
    contacts = 0
    for chunk in chunks(ids):
        contacts += s.execute(delete(PatientContact).where(PatientContact.conversation_id.in_(chunk))).rowcount or 0
        s.execute(delete(Conversation).where(Conversation.id.in_(chunk)))
    return len(ids), contacts


def prune_audit(
    sessions: sessionmaker, before: dt.datetime, archive_dir: Path, now: dt.datetime
) -> tuple[Path | None, int]:
    """Archive audit rows older than `before`, then delete them (the permit path), audited."""
    with sessions() as s:
        rows = s.execute(select(AuditEntry).where(AuditEntry.at < before).order_by(AuditEntry.id)).scalars().all()
        if not rows:
            return None, 0
        lines = [
            json.dumps(
                {
                    "id": r.id,
                    "at": r.at.isoformat(),
                    "actor_type": r.actor_type,
                    "actor_id": r.actor_id,
                    "action": r.action,
                    "escalation_id": r.escalation_id,
                    "detail": r.detail,
                },
                sort_keys=True,
            )
            for r in rows
        ]
        last_id = rows[-1].id
    archive_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = archive_dir / f"audit-before-{before:%Y%m%d}-{now:%Y%m%dT%H%M%S}.jsonl.gz"
    data = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"))
    path.write_bytes(data)
    path.chmod(0o600)
    digest = hashlib.sha256(data).hexdigest()
    with transaction(sessions) as s:
        s.add(AuditPrunePermit(id=1, reason="retention"))
        s.flush()
        deleted = s.execute(delete(AuditEntry).where(AuditEntry.id <= last_id, AuditEntry.at < before)).rowcount or 0
        s.execute(delete(AuditPrunePermit))
        audit(
            s,
            "audit_log_pruned",
            actor_id="retention",
            rows=deleted,
            before=before.isoformat(),
            archive=path.name,
            archive_sha256=digest,
        )
    return path, deleted
