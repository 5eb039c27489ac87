"""Escalations to clinic staff: record, alert, acknowledge, resolve, and the timers between.

Every change is one database transaction that also writes its outbox rows and audit entries, so
an escalation is committed before anyone is told it happened, and a crash loses nothing. One open
escalation per conversation episode: repeated red flags update it; a more urgent level re-alerts.
Nothing here talks to Telegram: the outbox relay (relay.py) delivers.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.levels import ESCALATED, RANK
from bot.store.audit import audit
from bot.store.db import transaction, with_retries
from bot.store.models import OPEN_STATUSES, Conversation, Escalation, OutboxMessage, Staff, utcnow

# Outbox priority (lower goes first): an emergency alert never waits behind urgent ones.
PRIORITY = {"emergency": 0, "urgent": 1, "update": 2, "flood": 3}
STAFF_KINDS = ("alert", "realert", "resend", "update")
PUSH_TARGETS = ("telegram", "email")  # targets that reach a nurse who is not looking at a screen
ALL_TARGETS = "*"  # a staff row not yet fanned out to the relay's targets
REF_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read out over the phone
MAX_RESENDS = 3
MAX_WORDS_KEPT = 20


def new_reference() -> str:
    return "H-" + "".join(secrets.choice(REF_ALPHABET) for _ in range(6))


@dataclass
class Recorded:
    id: str
    created: bool  # a new escalation (a new alert was queued)
    realerted: bool  # an open one was raised to a more urgent level (alert queued again)
    level: str


@dataclass
class ActionResult:
    ok: bool
    status: str  # the escalation's status afterwards
    message: str  # for the person who acted ("Acknowledged by ...", "not on the roster")


class Escalations:
    def __init__(
        self,
        sessions: sessionmaker,
        resend_after_minutes: float = 10,
        tell_patient_after_minutes: float = 20,
        clock=utcnow,
        new_per_channel_per_minute: int = 30,
    ):
        """Staff rows name no target: the relay that delivers fans each one out to the targets
        it has (its registry), so a process without the Telegram or SMTP settings cannot drop an
        alert, and a target added later also gets the alerts still queued."""
        self.sessions = sessions
        self.new_per_channel_per_minute = new_per_channel_per_minute
        self.resend_after = dt.timedelta(minutes=resend_after_minutes)
        self.tell_patient_after = dt.timedelta(minutes=tell_patient_after_minutes)
        self.clock = clock

    # -- from the conversation -----------------------------------------------------------------
    def record(
        self,
        conversation_id: str,
        channel: str,
        level: str,
        summary: str,
        findings: list[dict[str, Any]],
        reasons: list[str],
        words: str,
        transcript: list[dict[str, Any]] | None = None,
        days_since_procedure: float | None = None,
        contact: dict[str, Any] | None = None,
    ) -> Recorded:
        """Open or update the conversation's escalation; retried through database restarts."""
        if level not in ESCALATED:
            raise ValueError(f"only urgent and emergency are escalated, not {level!r}")
        return with_retries(
            lambda: self._record(
                conversation_id,
                channel,
                level,
                summary,
                findings,
                reasons,
                words,
                transcript or [],
                days_since_procedure,
                contact or {},
            ),
            what="recording an escalation",
        )

    def _record(
        self, conversation_id, channel, level, summary, findings, reasons, words, transcript, days_since, contact
    ) -> Recorded:
        now = self.clock()
        with transaction(self.sessions) as s:
            if s.get(Conversation, conversation_id) is None:
                s.add(Conversation(id=conversation_id, channel=channel, created_at=now))
                s.flush()
            stmt = (
                select(Escalation)
                .where(Escalation.conversation_id == conversation_id, Escalation.status.in_(OPEN_STATUSES))
                .order_by(Escalation.created_at.desc())
                .limit(1)
            )
            if s.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update()
            esc = s.execute(stmt).scalars().first()
            entry = {"text": words, "at": now.isoformat(timespec="seconds"), "level": level}
            if esc is None:
                esc = Escalation(
                    id=new_reference(),
                    conversation_id=conversation_id,
                    status="open",
                    level=level,
                    summary=summary,
                    findings=findings,
                    reasons=reasons,
                    patient_words=[entry],
                    transcript=transcript,
                    days_since_procedure=days_since,
                    contact=contact,
                    created_at=now,
                    updated_at=now,
                    alerted_at=now,
                    resend_due_at=now + self.resend_after,
                    staff_message={},
                )
                s.add(esc)
                s.flush()
                flood = level == "urgent" and self._flooding(s, channel, now)
                self._queue(s, esc, "alert", f"{esc.id}:alert", priority=PRIORITY["flood"] if flood else None)
                audit(
                    s,
                    "escalation_opened",
                    escalation_id=esc.id,
                    level=level,
                    flood=flood or None,
                    concepts=[f.get("concept") for f in findings],
                )
                return Recorded(esc.id, created=True, realerted=False, level=level)
            realert = RANK[level] > RANK[esc.level]
            esc.patient_words = (list(esc.patient_words) + [entry])[-MAX_WORDS_KEPT:]
            esc.findings = _merge_findings(esc.findings, findings)
            esc.transcript = transcript or esc.transcript
            esc.reasons = reasons if realert else list(dict.fromkeys(list(esc.reasons) + reasons))
            if days_since is not None:
                esc.days_since_procedure = days_since
            esc.updated_at = now
            if realert:
                esc.level, esc.summary = level, summary
                if esc.status == "acknowledged":
                    esc.status = "notified"  # a more urgent picture needs a new acknowledgement
                    esc.acknowledged_at = esc.acknowledged_by = None
                esc.alerted_at, esc.resend_due_at = now, now + self.resend_after
                self._queue(s, esc, "realert", f"{esc.id}:realert:{level}")
                audit(s, "escalation_level_raised", escalation_id=esc.id, level=level)
            else:
                audit(s, "escalation_updated", escalation_id=esc.id, level=level)
            return Recorded(esc.id, created=False, realerted=realert, level=esc.level)

    # -- from staff ----------------------------------------------------------------------------
    def acknowledge(
        self,
        escalation_id: str,
        staff_id: int | None,
        via: str,
        note: str | None = None,
        telegram_user_id: int | None = None,
    ) -> ActionResult:
        return self._staff_action("acknowledge", escalation_id, staff_id, via, note, telegram_user_id)

    def resolve(
        self,
        escalation_id: str,
        staff_id: int | None,
        via: str,
        note: str | None = None,
        telegram_user_id: int | None = None,
    ) -> ActionResult:
        return self._staff_action("resolve", escalation_id, staff_id, via, note, telegram_user_id)

    def _staff_action(self, action, escalation_id, staff_id, via, note, telegram_user_id) -> ActionResult:
        now = self.clock()
        with transaction(self.sessions) as s:
            staff = None
            if staff_id is not None:
                staff = s.get(Staff, staff_id)
            elif telegram_user_id is not None:
                staff = s.execute(select(Staff).where(Staff.telegram_user_id == telegram_user_id)).scalars().first()
            esc = s.get(Escalation, escalation_id)
            actor: dict[str, Any] = {
                "actor_type": "staff" if staff else "unknown",
                "actor_id": str(staff.id)
                if staff
                else (f"telegram:{telegram_user_id}" if telegram_user_id is not None else None),
            }
            if staff is None or not staff.active:
                audit(
                    s,
                    f"{action}_refused",
                    escalation_id=escalation_id if esc else None,
                    via=via,
                    reason="not on the staff roster",
                    **actor,
                )
                return ActionResult(
                    False, esc.status if esc else "unknown", "Only clinic staff on the roster can do that."
                )
            if esc is None:
                audit(
                    s,
                    f"{action}_refused",
                    via=via,
                    reason="no such escalation",
                    requested=str(escalation_id)[:40],
                    **actor,
                )
                return ActionResult(False, "unknown", "No such escalation.")
            if action == "acknowledge":
                if esc.status in ("acknowledged", "resolved"):
                    audit(s, "acknowledge_repeated", escalation_id=esc.id, via=via, **actor)
                    return ActionResult(True, esc.status, f"Already {esc.status}.")
                esc.status, esc.acknowledged_at, esc.acknowledged_by = "acknowledged", now, staff.id
                message = f"Acknowledged by {staff.name}"
            else:
                if esc.status == "resolved":
                    audit(s, "resolve_repeated", escalation_id=esc.id, via=via, **actor)
                    return ActionResult(True, esc.status, "Already resolved.")
                if esc.acknowledged_at is None:
                    esc.acknowledged_at, esc.acknowledged_by = now, staff.id
                esc.status, esc.resolved_at, esc.resolved_by = "resolved", now, staff.id
                esc.resolution_note = (note or "").strip()[:2000] or None
                message = f"Resolved by {staff.name}"
            esc.updated_at = now
            audit(
                s,
                action + "d" if action.endswith("e") else action,
                escalation_id=esc.id,
                via=via,
                note=(note or "")[:2000] or None,
                **actor,
            )
            self._queue(s, esc, "update", f"{esc.id}:update:{esc.status}:{now.isoformat()}")
            return ActionResult(True, esc.status, message)

    def refuse_button(self, telegram_user_id: int | None, data: str, chat: str) -> None:
        """A staff-chat button that is not ours or pressed outside the staff chat: audited only."""
        with transaction(self.sessions) as s:
            audit(
                s,
                "staff_button_refused",
                actor_type="unknown",
                actor_id=f"telegram:{telegram_user_id}",
                reason="unexpected button or chat",
                data=data[:64],
                chat=chat[:32],
            )

    # -- timers (the timers worker calls tick) ------------------------------------------------------
    def tick(self) -> int:
        """Queue re-sends of unacknowledged alerts and 'call us directly' notices; returns how many."""
        return with_retries(self._tick, what="escalation timers")

    def _tick(self) -> int:
        """Due times come from when the alert went out (alerted_at) and THIS worker's settings,
        so the timers' configuration lives in one place, whoever recorded the escalation."""
        now = self.clock()
        queued = 0
        with transaction(self.sessions) as s:
            waiting = (
                s.execute(
                    select(Escalation).where(
                        Escalation.status.in_(("open", "notified")), Escalation.alerted_at.isnot(None)
                    )
                )
                .scalars()
                .all()
            )
            for esc in waiting:
                next_resend = esc.alerted_at + self.resend_after * (esc.resend_count + 1)
                if esc.resend_count < MAX_RESENDS and next_resend <= now:
                    esc.resend_count += 1
                    self._queue(s, esc, "resend", f"{esc.id}:resend:{esc.resend_count}")
                    audit(s, "alert_resent_unacknowledged", escalation_id=esc.id, count=esc.resend_count)
                    queued += 1
                esc.resend_due_at = (
                    esc.alerted_at + self.resend_after * (esc.resend_count + 1)
                    if esc.resend_count < MAX_RESENDS
                    else None
                )
                if esc.patient_notified_at is None and esc.alerted_at + self.tell_patient_after <= now:
                    esc.patient_notified_at = now
                    self._queue(s, esc, "patient_notice", f"{esc.id}:patient_notice")
                    audit(s, "patient_told_to_call_directly", escalation_id=esc.id)
                    queued += 1
        return queued

    # -- reading (dashboard) ----------------------------------------------------------------------
    def queue(self) -> list[Escalation]:
        """Open escalations, most urgent first, oldest first within a level."""
        with self.sessions() as s:
            rows = (
                s.execute(
                    select(Escalation).where(Escalation.status.in_(OPEN_STATUSES)).order_by(Escalation.created_at)
                )
                .scalars()
                .all()
            )
        return sorted(rows, key=lambda e: (-RANK[e.level], e.status == "acknowledged", e.created_at))

    def get(self, escalation_id: str) -> Escalation | None:
        with self.sessions() as s:
            return s.get(Escalation, escalation_id)

    # -- internals --------------------------------------------------------------------------------
    def _flooding(self, s: Session, channel: str, now: dt.datetime) -> bool:
        """More new escalations from this channel in the last minute than the cap: still recorded
        and on the dashboard, but their alerts go after everyone else's."""
        recent = s.execute(
            select(func.count())
            .select_from(Escalation)
            .join(Conversation, Conversation.id == Escalation.conversation_id)
            .where(Conversation.channel == channel, Escalation.created_at > now - dt.timedelta(minutes=1))
        ).scalar()
        return int(recent or 0) > self.new_per_channel_per_minute

    def _queue(self, s: Session, esc: Escalation, kind: str, key: str, priority: int | None = None) -> None:
        """A staff row for every target ('*', fanned out by the relay), or the patient's notice."""
        target = ALL_TARGETS if kind in STAFF_KINDS else "patient"
        if priority is None:
            priority = PRIORITY["update"] if kind == "update" else PRIORITY[esc.level]
        s.add(
            OutboxMessage(
                escalation_id=esc.id,
                kind=kind,
                target=target,
                priority=priority,
                idempotency_key=f"{key}:{target}",
                payload={"escalation_id": esc.id, "kind": kind},
                status="pending",
                next_attempt_at=utcnow(),
            )
        )


def _merge_findings(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_concept = {f.get("concept"): f for f in old}
    for f in new:
        by_concept[f.get("concept")] = f
    return list(by_concept.values())
