"""The outbox relay: delivers what the escalation service queued, exactly as often as it should.

Rows are claimed in a short transaction (SKIP LOCKED on PostgreSQL, so several relays can run),
sent through a notifier (Telegram for staff; the patient's channel for 'call us directly'), then
marked sent only if the claim is still ours. A relay killed after claiming leaves the row
'sending'; after LEASE it is claimed again and sent, so nothing is lost. Rate limits are honoured
(retry_after), network errors and 5xx are retried with exponential backoff, bad requests go to
'dead' and are audited (the dashboard shows them).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol, Tuple

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from .db import transaction, with_retries
from .models import Escalation, OutboxMessage, Staff, utcnow
from .service import Escalations, audit

log = logging.getLogger(__name__)
ALERT_KINDS = ("alert", "realert", "resend")
MAX_BACKOFF = 300.0


class RetryLater(Exception):
    """The receiving API asked us to wait (HTTP 429 retry_after)."""

    def __init__(self, after_seconds: float):
        super().__init__(f"retry after {after_seconds}s")
        self.after_seconds = float(after_seconds)


class TransientError(Exception):
    """Network error, timeout or 5xx: try again later."""


class PermanentError(Exception):
    """The message can never be delivered as it is (bad request, chat not found)."""


@dataclass
class AlertView:
    """What a notifier needs to show an escalation; a snapshot, no database access."""

    id: str
    kind: str
    level: str
    status: str
    summary: str
    reasons: List[str]
    findings: List[Dict[str, Any]]
    patient_words: List[Dict[str, Any]]
    days_since_procedure: Optional[float]
    contact: Dict[str, Any]
    conversation_id: str
    created_at: dt.datetime
    acknowledged_by: Optional[str] = None
    acknowledged_at: Optional[dt.datetime] = None
    resolved_by: Optional[str] = None
    resolved_at: Optional[dt.datetime] = None
    resolution_note: Optional[str] = None
    resend_count: int = 0
    staff_message: Dict[str, Any] = field(default_factory=dict)


class StaffNotifier(Protocol):
    async def send_alert(self, view: AlertView) -> Dict[str, Any]: ...
    async def update_alert(self, ref: Dict[str, Any], view: AlertView) -> None: ...


class PatientNotifier(Protocol):
    async def notify_patient(self, view: AlertView) -> Dict[str, Any]: ...


class OutboxRelay:
    def __init__(self, sessions: sessionmaker, escalations: Escalations, staff: StaffNotifier,
                 patient: Optional[PatientNotifier] = None, lease_seconds: Optional[float] = None,
                 batch: int = 20, is_postgres: bool = False):
        self.sessions = sessions
        self.escalations = escalations
        self.staff = staff
        self.patient = patient
        self.lease = dt.timedelta(seconds=lease_seconds if lease_seconds is not None
                                  else float(os.environ.get("HSG_RELAY_LEASE_SECONDS", "60")))
        self.batch = batch
        self.is_postgres = is_postgres
        self.backoff_base = float(os.environ.get("HSG_RELAY_BACKOFF_BASE", "2"))
        # Fault injection for tests: pause between claiming and sending (the crash window).
        self._pause_before_send = float(os.environ.get("HSG_RELAY_PAUSE_BEFORE_SEND", "0"))

    # -- loop ---------------------------------------------------------------------------------
    async def run_forever(self, stop: asyncio.Event, poll_seconds: float = 1.0) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.escalations.tick)
                sent = await self.run_once()
            except Exception:      # keep relaying through database outages; the next loop retries
                log.exception("outbox relay loop failed; retrying")
                sent = 0
            if not sent:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
                except asyncio.TimeoutError:
                    pass

    async def run_once(self) -> int:
        claimed = await asyncio.to_thread(with_retries, self._claim, 4, 0.25, 2.0, "claiming outbox rows")
        for row_id, claim in claimed:
            if self._pause_before_send:
                log.warning("test fault: pausing %.1fs before sending outbox row %s", self._pause_before_send, row_id)
                await asyncio.sleep(self._pause_before_send)
            await self._deliver(row_id, claim)
        return len(claimed)

    # -- claiming -------------------------------------------------------------------------------
    def _claim(self) -> List[Tuple[int, dt.datetime]]:
        now = utcnow()
        with transaction(self.sessions) as s:
            s.execute(update(OutboxMessage)
                      .where(OutboxMessage.status == "sending", OutboxMessage.claimed_at < now - self.lease)
                      .values(status="pending", last_error="lease expired (relay stopped mid-send)"))
            stmt = (select(OutboxMessage).where(OutboxMessage.status == "pending",
                                                OutboxMessage.next_attempt_at <= now)
                    .order_by(OutboxMessage.id).limit(self.batch))
            if self.is_postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            rows = s.execute(stmt).scalars().all()
            for r in rows:
                r.status, r.claimed_at, r.attempts = "sending", now, r.attempts + 1
            return [(r.id, now) for r in rows]

    # -- delivering -----------------------------------------------------------------------------
    def _view(self, row_id: int) -> Tuple[OutboxMessage, AlertView]:
        with self.sessions() as s:
            row = s.get(OutboxMessage, row_id)
            esc = s.get(Escalation, row.escalation_id)
            names = {st.id: st.name for st in s.execute(select(Staff).where(
                Staff.id.in_([i for i in (esc.acknowledged_by, esc.resolved_by) if i]))).scalars()}
            view = AlertView(
                id=esc.id, kind=row.kind, level=esc.level, status=esc.status, summary=esc.summary,
                reasons=list(esc.reasons), findings=list(esc.findings), patient_words=list(esc.patient_words),
                days_since_procedure=esc.days_since_procedure, contact=dict(esc.contact),
                conversation_id=esc.conversation_id, created_at=esc.created_at,
                acknowledged_by=names.get(esc.acknowledged_by), acknowledged_at=esc.acknowledged_at,
                resolved_by=names.get(esc.resolved_by), resolved_at=esc.resolved_at,
                resolution_note=esc.resolution_note, resend_count=esc.resend_count,
                staff_message=dict(esc.staff_message or {}))
            return row, view

    async def _deliver(self, row_id: int, claim: dt.datetime) -> None:
        row, view = await asyncio.to_thread(with_retries, lambda: self._view(row_id))
        try:
            result: Dict[str, Any] = {}
            if row.kind in ALERT_KINDS:
                result = await self.staff.send_alert(view)
            elif row.kind == "update":
                if view.staff_message:
                    await self.staff.update_alert(view.staff_message, view)
                    result = {"edited": view.staff_message}
                else:
                    result = {"skipped": "no staff message to edit yet"}
            elif row.kind == "patient_notice":
                result = (await self.patient.notify_patient(view)) if self.patient else {
                    "skipped": "no patient notifier configured"}
            else:
                raise PermanentError(f"unknown outbox kind {row.kind!r}")
        except RetryLater as e:
            await asyncio.to_thread(with_retries, lambda: self._reschedule(row_id, claim, e.after_seconds, str(e)))
            return
        except (TransientError, asyncio.TimeoutError, OSError) as e:
            delay = min(MAX_BACKOFF, self.backoff_base ** min(row.attempts, 10))
            await asyncio.to_thread(with_retries, lambda: self._reschedule(row_id, claim, delay, repr(e)))
            return
        except PermanentError as e:
            await asyncio.to_thread(with_retries, lambda: self._dead(row_id, claim, str(e)))
            return
        await asyncio.to_thread(with_retries, lambda: self._sent(row_id, claim, result))

    def _sent(self, row_id: int, claim: dt.datetime, result: Dict[str, Any]) -> None:
        now = utcnow()
        with transaction(self.sessions) as s:
            row = s.get(OutboxMessage, row_id)
            if row.status != "sending" or row.claimed_at != claim:
                log.warning("outbox row %s was reclaimed while sending; not marking it", row_id)
                return
            row.status, row.sent_at, row.result, row.last_error = "sent", now, result, None
            esc = s.get(Escalation, row.escalation_id)
            if row.kind in ALERT_KINDS and result.get("message_id"):
                esc.staff_message = {"chat_id": result.get("chat_id"), "message_id": result["message_id"]}
                if esc.status == "open":
                    esc.status, esc.notified_at = "notified", now
            audit(s, f"{row.kind}_delivered", escalation_id=esc.id, outbox_id=row_id, attempts=row.attempts)

    def _reschedule(self, row_id: int, claim: dt.datetime, delay: float, error: str) -> None:
        with transaction(self.sessions) as s:
            row = s.get(OutboxMessage, row_id)
            if row.status != "sending" or row.claimed_at != claim:
                return
            row.status = "pending"
            row.next_attempt_at = utcnow() + dt.timedelta(seconds=delay)
            row.last_error = error[:500]
            log.warning("outbox row %s (%s) not delivered, retry in %.1fs: %s", row_id, row.kind, delay, error[:200])

    def _dead(self, row_id: int, claim: dt.datetime, error: str) -> None:
        with transaction(self.sessions) as s:
            row = s.get(OutboxMessage, row_id)
            if row.status != "sending" or row.claimed_at != claim:
                return
            row.status, row.last_error = "dead", error[:500]
            audit(s, f"{row.kind}_delivery_failed", escalation_id=row.escalation_id, outbox_id=row_id,
                  error=error[:500])
            log.error("outbox row %s (%s) cannot be delivered: %s", row_id, row.kind, error[:200])
