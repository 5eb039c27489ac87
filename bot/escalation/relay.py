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
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.store.audit import audit
from bot.store.db import transaction, with_retries
from bot.store.models import Escalation, OutboxMessage, Staff, utcnow

from .service import ALL_TARGETS, Escalations

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
    reasons: list[str]
    findings: list[dict[str, Any]]
    patient_words: list[dict[str, Any]]
    days_since_procedure: float | None
    contact: dict[str, Any]
    conversation_id: str
    created_at: dt.datetime
    acknowledged_by: str | None = None
    acknowledged_at: dt.datetime | None = None
    resolved_by: str | None = None
    resolved_at: dt.datetime | None = None
    resolution_note: str | None = None
    resend_count: int = 0
    staff_message: dict[str, Any] = field(default_factory=dict)


class StaffNotifier(Protocol):
    """A staff alert target (Telegram staff chat, email, the dashboard). `target_name` names its
    outbox rows; `max_per_minute` (None: no limit) is where a flood turns into a digest."""

    target_name: str
    max_per_minute: int | None

    async def send_alert(self, view: AlertView) -> dict[str, Any]: ...
    async def update_alert(self, ref: dict[str, Any], view: AlertView) -> None: ...
    async def send_digest(self, views: list[AlertView]) -> dict[str, Any]: ...


class PatientNotifier(Protocol):
    async def notify_patient(self, view: AlertView) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Claimed:
    id: int
    at: dt.datetime
    target: str
    kind: str
    priority: int

    @property
    def digestible(self) -> bool:
        """Urgent alerts may be folded into a digest; emergencies and edits never are."""
        return self.kind in ALERT_KINDS and self.priority > 0


def _as_targets(staff: Any) -> dict[str, StaffNotifier]:
    if isinstance(staff, dict):
        return dict(staff)
    return {getattr(staff, "target_name", "telegram"): staff}


class OutboxRelay:
    def __init__(
        self,
        sessions: sessionmaker,
        escalations: Escalations,
        staff: Any,
        patient: PatientNotifier | None = None,
        lease_seconds: float = 60.0,
        backoff_base: float = 2.0,
        pause_before_send: float = 0.0,
        batch: int = 20,
        is_postgres: bool = False,
        run_timers: bool = True,
    ):
        """staff: one notifier, or {target name: notifier} for several targets."""
        self.sessions = sessions
        self.escalations = escalations
        self.targets = _as_targets(staff)
        self.patient = patient
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.batch = batch
        self.is_postgres = is_postgres
        self.run_timers = run_timers
        self.backoff_base = backoff_base
        # Fault injection for tests: pause between claiming and sending (the crash window).
        self._pause_before_send = pause_before_send

    @property
    def staff(self) -> StaffNotifier:
        """The first push target (kept for callers that know one target)."""
        return next(iter(self.targets.values()))

    # -- loop ---------------------------------------------------------------------------------
    async def run_forever(self, stop: asyncio.Event, poll_seconds: float = 1.0) -> None:
        while not stop.is_set():
            try:
                if self.run_timers:
                    await asyncio.to_thread(self.escalations.tick)
                sent = await self.run_once()
            except Exception:  # keep relaying through database outages; the next loop retries
                log.exception("outbox relay loop failed; retrying")
                sent = 0
            if not sent:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
                except asyncio.TimeoutError:
                    pass

    async def run_once(self) -> int:
        """Claim a batch (emergencies first), send each row, and fold a flood into digests."""
        claimed = await asyncio.to_thread(with_retries, self._claim, 4, 0.25, 2.0, "claiming outbox rows")
        budget = await asyncio.to_thread(with_retries, lambda: self._budgets({c.target for c in claimed}))
        held: dict[str, list[Claimed]] = {}
        for c in claimed:
            left = budget.get(c.target)
            if c.digestible and left is not None and left <= 0:
                held.setdefault(c.target, []).append(c)
                continue
            if left is not None and c.kind in ALERT_KINDS:
                budget[c.target] = left - 1
            if self._pause_before_send:
                log.warning("test fault: pausing %.1fs before sending outbox row %s", self._pause_before_send, c.id)
                await asyncio.sleep(self._pause_before_send)
            await self._deliver(c.id, c.at)
        for target, rows in held.items():
            await self._digest(target, rows)
        return len(claimed)

    # -- claiming -------------------------------------------------------------------------------
    def _claim(self) -> list[Claimed]:
        now = utcnow()
        with transaction(self.sessions) as s:
            s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status == "sending", OutboxMessage.claimed_at < now - self.lease)
                .values(status="pending", last_error="lease expired (relay stopped mid-send)")
            )
            self._fan_out(s, now)
            stmt = (
                select(OutboxMessage)
                .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.priority, OutboxMessage.id)
                .limit(self.batch)
            )
            if self.is_postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            rows = s.execute(stmt).scalars().all()
            for r in rows:
                r.status, r.claimed_at, r.attempts = "sending", now, r.attempts + 1
            return [Claimed(r.id, now, r.target, r.kind, r.priority) for r in rows]

    def _fan_out(self, s: Session, now: dt.datetime) -> None:
        """Each staff row for every target becomes one row per target this relay has, in the
        same transaction (so a crash fans out all or nothing, and twice is harmless)."""
        stmt = (
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.target == ALL_TARGETS)
            .order_by(OutboxMessage.id)
        )
        if self.is_postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        for row in s.execute(stmt).scalars().all():
            base = row.idempotency_key[: -len(ALL_TARGETS) - 1]
            keys = {f"{base}:{t}": t for t in self.targets}
            have = set(
                s.execute(
                    select(OutboxMessage.idempotency_key).where(OutboxMessage.idempotency_key.in_(list(keys)))
                ).scalars()
            )
            for key, target in keys.items():
                if key not in have:
                    s.add(
                        OutboxMessage(
                            escalation_id=row.escalation_id,
                            kind=row.kind,
                            target=target,
                            priority=row.priority,
                            idempotency_key=key,
                            payload=row.payload,
                            status="pending",
                            next_attempt_at=now,
                            created_at=row.created_at,
                        )
                    )
            row.status, row.sent_at, row.result = "fanned", now, {"targets": sorted(self.targets)}
        s.flush()

    def _budgets(self, targets: set) -> dict[str, int | None]:
        """Alerts each rate-limited target may still take this minute (None: no limit)."""
        out: dict[str, int | None] = {}
        since = utcnow() - dt.timedelta(minutes=1)
        with self.sessions() as s:
            for t in targets:
                limit = getattr(self.targets.get(t), "max_per_minute", None)
                if limit is None:
                    out[t] = None
                    continue
                sent = s.execute(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        OutboxMessage.target == t,
                        OutboxMessage.status == "sent",
                        OutboxMessage.kind.in_(ALERT_KINDS),
                        OutboxMessage.sent_at > since,
                    )
                ).scalar()
                out[t] = int(limit) - int(sent or 0)
        return out

    # -- delivering -----------------------------------------------------------------------------
    def _view(self, row_id: int) -> tuple[OutboxMessage, AlertView]:
        with self.sessions() as s:
            row = s.get(OutboxMessage, row_id)
            esc = s.get(Escalation, row.escalation_id)
            names = {
                st.id: st.name
                for st in s.execute(
                    select(Staff).where(Staff.id.in_([i for i in (esc.acknowledged_by, esc.resolved_by) if i]))
                ).scalars()
            }
            view = AlertView(
                id=esc.id,
                kind=row.kind,
                level=esc.level,
                status=esc.status,
                summary=esc.summary,
                reasons=list(esc.reasons),
                findings=list(esc.findings),
                patient_words=list(esc.patient_words),
                days_since_procedure=esc.days_since_procedure,
                contact=dict(esc.contact),
                conversation_id=esc.conversation_id,
                created_at=esc.created_at,
                acknowledged_by=names.get(esc.acknowledged_by),
                acknowledged_at=esc.acknowledged_at,
                resolved_by=names.get(esc.resolved_by),
                resolved_at=esc.resolved_at,
                resolution_note=esc.resolution_note,
                resend_count=esc.resend_count,
                staff_message=dict(esc.staff_message or {}),
            )
            return row, view

    async def _deliver(self, row_id: int, claim: dt.datetime) -> None:
        row, view = await asyncio.to_thread(with_retries, lambda: self._view(row_id))
        try:
            result = await self._send(row, view)
        except RetryLater as e:
            delay, error, dead = e.after_seconds, str(e), False
        except (TransientError, asyncio.TimeoutError, OSError) as e:
            delay, error, dead = min(MAX_BACKOFF, self.backoff_base ** min(row.attempts, 10)), repr(e), False
        except PermanentError as e:
            delay, error, dead = 0.0, str(e), True
        else:
            await asyncio.to_thread(with_retries, lambda: self._sent(row_id, claim, result))
            return
        if dead:
            await asyncio.to_thread(with_retries, lambda: self._dead(row_id, claim, error))
        else:
            await asyncio.to_thread(with_retries, lambda: self._reschedule(row_id, claim, delay, error))

    async def _send(self, row: OutboxMessage, view: AlertView) -> dict[str, Any]:
        if row.kind == "patient_notice":
            return (
                (await self.patient.notify_patient(view))
                if self.patient
                else {"skipped": "no patient notifier configured"}
            )
        notifier = self.targets.get(row.target)
        if notifier is None:
            # Another process may have this target configured; keep the row, never drop it.
            raise TransientError(f"target {row.target!r} is not configured in this relay")
        if row.kind in ALERT_KINDS:
            return await notifier.send_alert(view)
        if row.kind == "update":
            ref = view.staff_message.get(row.target)
            if not ref:
                return {"skipped": "no staff message to edit yet"}
            await notifier.update_alert(ref, view)
            return {"edited": ref}
        raise PermanentError(f"unknown outbox kind {row.kind!r}")

    async def _digest(self, target: str, held: list[Claimed]) -> None:
        """A flood to one target: one digest for every held urgent alert, at most one a minute."""
        claim = held[0].at
        ids = await asyncio.to_thread(with_retries, lambda: self._collapse(target, claim, [c.id for c in held]))
        if not ids:
            return
        views = [(await asyncio.to_thread(with_retries, lambda i=i: self._view(i)))[1] for i in ids]
        try:
            result = await self.targets[target].send_digest(views)
        except RetryLater as e:
            delay, error = e.after_seconds, str(e)
        except (TransientError, asyncio.TimeoutError, OSError, PermanentError) as e:
            delay, error = min(MAX_BACKOFF, self.backoff_base**3), repr(e)
        else:
            await asyncio.to_thread(with_retries, lambda: self._digested(target, ids, claim, result))
            return
        for i in ids:
            await asyncio.to_thread(with_retries, lambda i=i: self._reschedule(i, claim, delay, error))

    def _collapse(self, target: str, claim: dt.datetime, held: list[int]) -> list[int]:
        """Claim every pending urgent alert for the target with the held ones; if a digest went
        out in the last minute, put them all back until that minute is over and return []."""
        now = utcnow()
        with transaction(self.sessions) as s:
            last = s.execute(
                select(func.max(OutboxMessage.sent_at)).where(
                    OutboxMessage.target == target, OutboxMessage.status == "digested"
                )
            ).scalar()
            if last is not None and now - last < dt.timedelta(minutes=1):
                s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(held), OutboxMessage.claimed_at == claim)
                    .values(status="pending", next_attempt_at=last + dt.timedelta(minutes=1))
                )
                return []
            more = (
                s.execute(
                    select(OutboxMessage).where(
                        OutboxMessage.target == target,
                        OutboxMessage.status == "pending",
                        OutboxMessage.kind.in_(ALERT_KINDS),
                        OutboxMessage.priority > 0,
                    )
                )
                .scalars()
                .all()
            )
            for r in more:
                r.status, r.claimed_at, r.attempts = "sending", claim, r.attempts + 1
            return sorted(set(held) | {r.id for r in more})

    def _digested(self, target: str, ids: list[int], claim: dt.datetime, result: dict[str, Any]) -> None:
        now = utcnow()
        with transaction(self.sessions) as s:
            rows = s.execute(select(OutboxMessage).where(OutboxMessage.id.in_(ids))).scalars().all()
            mine = [r for r in rows if r.status == "sending" and r.claimed_at == claim]
            for r in mine:
                r.status, r.sent_at, r.result, r.last_error = "digested", now, result, None
            audit(
                s,
                "alert_digest_delivered",
                target=target,
                count=len(mine),
                escalations=sorted({r.escalation_id for r in mine})[:200],
            )

    def _sent(self, row_id: int, claim: dt.datetime, result: dict[str, Any]) -> None:
        now = utcnow()
        with transaction(self.sessions) as s:
            row = s.get(OutboxMessage, row_id)
            if row.status != "sending" or row.claimed_at != claim:
                log.warning("outbox row %s was reclaimed while sending; not marking it", row_id)
                return
            row.status, row.sent_at, row.result, row.last_error = "sent", now, result, None
            esc = s.get(Escalation, row.escalation_id)
            if row.kind in ALERT_KINDS and result.get("message_id"):
                refs = dict(esc.staff_message or {})
                refs[row.target] = {k: result[k] for k in ("chat_id", "message_id") if k in result}
                esc.staff_message = refs
                if esc.status == "open":
                    esc.status, esc.notified_at = "notified", now
            audit(
                s,
                f"{row.kind}_delivered",
                escalation_id=esc.id,
                outbox_id=row_id,
                attempts=row.attempts,
                target=row.target,
            )

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
            audit(
                s, f"{row.kind}_delivery_failed", escalation_id=row.escalation_id, outbox_id=row_id, error=error[:500]
            )
            log.error("outbox row %s (%s) cannot be delivered: %s", row_id, row.kind, error[:200])
