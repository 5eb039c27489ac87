"""What the dashboard pages show, read from the database (blocking: call these in a thread).

Everything is turned into plain dictionaries here, so templates never touch the database and
never see an ORM object; the texts stay as they are (the templates escape them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from bot.escalation.service import Escalations
from bot.staff.sessions import CurrentStaff
from bot.store.audit import audit
from bot.store.db import transaction
from bot.store.models import OPEN_STATUSES, AuditEntry, Escalation, OutboxMessage, Staff

STAFF_ALERT_KINDS = ("alert", "realert", "resend")
ALERT_OVERDUE = dt.timedelta(minutes=2)  # a staff alert still pending after this is "not delivered"
RESOLVED_WINDOW = dt.timedelta(hours=24)
RESOLVED_SHOWN = 50
QUOTE_CHARS = 280
LIVE_ITEMS = 20

LEVELS = {
    "emergency": {"word": "EMERGENCY", "css": "emergency"},
    "urgent": {"word": "Urgent", "css": "urgent"},
}
STATUSES = {
    "open": "Open: not yet acknowledged",
    "notified": "Staff alerted: not yet acknowledged",
    "acknowledged": "Acknowledged",
    "resolved": "Resolved",
}
ACTIONS = {
    "escalation_opened": "Escalation opened",
    "escalation_updated": "Patient reported more red flags",
    "escalation_level_raised": "Level raised",
    "alert_delivered": "Staff alert delivered",
    "realert_delivered": "Level-raised alert delivered",
    "resend_delivered": "Alert re-sent and delivered",
    "update_delivered": "Staff chat updated",
    "patient_notice_delivered": "Patient told to call the clinic",
    "alert_delivery_failed": "Staff alert could NOT be delivered",
    "realert_delivery_failed": "Level-raised alert could NOT be delivered",
    "resend_delivery_failed": "Re-sent alert could NOT be delivered",
    "update_delivery_failed": "Staff chat update failed",
    "patient_notice_delivery_failed": "Message to the patient could NOT be delivered",
    "alert_resent_unacknowledged": "Alert re-sent: nobody had acknowledged",
    "patient_told_to_call_directly": "Patient to be told to call the clinic directly",
    "acknowledged": "Acknowledged",
    "acknowledge_repeated": "Acknowledge pressed again",
    "acknowledge_refused": "Acknowledge refused",
    "resolved": "Resolved",
    "resolve_repeated": "Resolve pressed again",
    "resolve_refused": "Resolve refused",
    "dashboard_acknowledge": "Acknowledge button on the dashboard",
    "dashboard_resolve": "Resolve form on the dashboard",
}
VIEW_ACTIONS = ("dashboard_view_escalation",)
# The dashboard's own rows about a button press repeat the service's; the audit log keeps both.
HIDDEN_FROM_TIMELINE = VIEW_ACTIONS + ("dashboard_acknowledge", "dashboard_resolve")
FLAGS = (
    ("negated", "denied"),
    ("hypothetical", "asked about, not having it"),
    ("other_experiencer", "someone else"),
    ("proxy", "reported by someone else"),
    ("from_earlier", "from an earlier message"),
)


class Formatter:
    """Times and ages as nurses read them."""

    def __init__(self, tz: dt.tzinfo = dt.timezone.utc):
        self.tz = tz

    @staticmethod
    def age(then: dt.datetime | None, now: dt.datetime) -> str:
        if then is None:
            return ""
        minutes = max(0, int((now - then).total_seconds() // 60))
        if minutes < 60:
            return f"{minutes} min"
        hours, minutes = divmod(minutes, 60)
        if hours < 48:
            return f"{hours} h {minutes} min" if minutes else f"{hours} h"
        return f"{hours // 24} days"

    def when(self, then: dt.datetime | None) -> dict[str, str]:
        """{"iso": machine-readable UTC, "text": local time with the zone} (empty if unknown)."""
        if then is None:
            return {"iso": "", "text": ""}
        aware = then.replace(tzinfo=dt.timezone.utc) if then.tzinfo is None else then
        local = aware.astimezone(self.tz)
        return {"iso": aware.strftime("%Y-%m-%dT%H:%M:%SZ"), "text": local.strftime("%d %b %H:%M %Z")}

    def loose_when(self, value: Any) -> dict[str, str]:
        """A transcript's 'at': epoch seconds (Rasa), an ISO string, or nothing."""
        then = None
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                then = dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
            elif isinstance(value, str) and value:
                then = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except (ValueError, OverflowError, OSError):
            then = None
        return self.when(then)

    @staticmethod
    def days_since(days: float | None) -> str:
        if days is None:
            return "not known"
        days = round(float(days), 1)
        shown = f"{days:g}"
        return f"{shown} day" if days == 1 else f"{shown} days"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _level(level: str) -> dict[str, str]:
    return LEVELS.get(level, {"word": _text(level).capitalize() or "Unknown", "css": "other"})


def alert_state(rows: Iterable[OutboxMessage], now: dt.datetime) -> dict[str, Any]:
    """Whether the staff were told: from the latest alert (or level-raised alert) and its re-sends,
    on the targets that reach a nurse away from the screen (Telegram, email)."""
    rows = list(rows)
    # a '*' row is an alert not yet handed to the targets (pending: nobody told yet; fanned: done)
    alerts = sorted(
        (r for r in rows if r.kind in STAFF_ALERT_KINDS and r.target != "dashboard" and r.status != "fanned"),
        key=lambda r: (r.created_at, r.id),
    )
    if not alerts:
        if any(r.kind in STAFF_ALERT_KINDS and r.target == "dashboard" for r in rows):
            return {
                "delivered": True,
                "pending": False,
                "text": "on this dashboard only (no Telegram or email target is configured)",
            }
        return {"delivered": False, "pending": False, "text": "alert NOT delivered (no alert recorded)"}
    mains = [r for r in alerts if r.kind in ("alert", "realert")]
    started = max(r.created_at for r in mains) if mains else alerts[0].created_at
    relevant = [r for r in alerts if r.created_at >= started]
    # a row still addressed to every target ("*") that was marked delivered names no target
    sent = sorted({"staff" if r.target == "*" else r.target for r in relevant if r.status in ("sent", "digested")})
    failed = sorted({r.target for r in relevant if r.status == "dead"} - set(sent))
    if sent:
        text = "alert delivered (" + ", ".join(sent) + ")"
        return {
            "delivered": True,
            "pending": False,
            "text": text + (f"; NOT delivered by {', '.join(failed)}" if failed else ""),
        }
    if failed:
        return {"delivered": False, "pending": False, "text": "alert NOT delivered (delivery failed)"}
    if now - started > ALERT_OVERDUE:
        return {"delivered": False, "pending": False, "text": "alert NOT delivered (still waiting to be sent)"}
    return {"delivered": False, "pending": True, "text": "alert being sent"}


def _latest_words(esc: Escalation) -> str:
    words = list(esc.patient_words or [])
    text = _text(words[-1].get("text")) if words and isinstance(words[-1], dict) else ""
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"


def _staff_names(s, ids: Iterable[Any]) -> dict[str, str]:
    wanted = set()
    for i in ids:
        try:
            wanted.add(int(i))
        except (TypeError, ValueError):
            continue
    if not wanted:
        return {}
    rows = s.execute(select(Staff.id, Staff.name).where(Staff.id.in_(wanted))).all()
    return {str(r.id): r.name for r in rows}


def _outbox(s, ids: list[str]) -> dict[str, list[OutboxMessage]]:
    by_esc: dict[str, list[OutboxMessage]] = {i: [] for i in ids}
    if ids:
        for row in s.execute(
            select(OutboxMessage).where(OutboxMessage.escalation_id.in_(ids)).order_by(OutboxMessage.id)
        ).scalars():
            by_esc[row.escalation_id].append(row)
    return by_esc


def live_state(sessions) -> dict[str, Any]:
    """What the dashboard's live feed sends: the escalations nobody has acknowledged yet (most
    urgent first) and a stamp that changes whenever anything on the queue changes."""
    with sessions() as s:
        rows = s.execute(
            select(Escalation.id, Escalation.level, Escalation.status, Escalation.updated_at).where(
                Escalation.status.in_(OPEN_STATUSES)
            )
        ).all()
    waiting = sorted(
        (r for r in rows if r.status in ("open", "notified")), key=lambda r: (r.level != "emergency", r.updated_at)
    )
    stamp = max((r.updated_at for r in rows), default=None)
    return {
        "waiting": len(waiting),
        "emergency": sum(r.level == "emergency" for r in waiting),
        "open": len(rows),
        "stamp": f"{len(rows)}:{stamp.isoformat() if stamp else ''}",
        "items": [{"id": r.id, "level": r.level} for r in waiting[:LIVE_ITEMS]],
    }


def queue_page(
    escalations: Escalations, sessions, staff: CurrentStaff, now: dt.datetime, fmt: Formatter, auto_refresh: bool
) -> dict[str, Any]:
    """The open escalations (emergency first, oldest first), recently resolved ones; audited."""
    open_rows = escalations.queue()
    with transaction(sessions) as s:
        outbox = _outbox(s, [e.id for e in open_rows])
        resolved = (
            s.execute(
                select(Escalation)
                .where(Escalation.status == "resolved", Escalation.resolved_at >= now - RESOLVED_WINDOW)
                .order_by(Escalation.resolved_at.desc())
                .limit(RESOLVED_SHOWN)
            )
            .scalars()
            .all()
        )
        names = _staff_names(s, [e.acknowledged_by for e in open_rows] + [e.resolved_by for e in resolved])
        audit(
            s,
            "dashboard_view_queue",
            actor_type="staff",
            actor_id=str(staff.id),
            shown=[e.id for e in open_rows],
            auto_refresh=auto_refresh,
        )
    items = []
    for e in open_rows:
        items.append(
            {
                "id": e.id,
                "level": _level(e.level),
                "status": e.status,
                "status_text": STATUSES.get(e.status, e.status),
                "summary": _text(e.summary),
                "latest_words": _latest_words(e),
                "age": fmt.age(e.created_at, now),
                "opened": fmt.when(e.created_at),
                "days_since": fmt.days_since(e.days_since_procedure),
                "alert": alert_state(outbox.get(e.id, []), now),
                "acknowledged_by": names.get(_text(e.acknowledged_by), ""),
            }
        )
    return {
        "items": items,
        "counts": {
            "emergency": sum(1 for e in open_rows if e.level == "emergency"),
            "urgent": sum(1 for e in open_rows if e.level == "urgent"),
        },
        "resolved": [
            {
                "id": e.id,
                "level": _level(e.level),
                "summary": _text(e.summary),
                "resolved": fmt.when(e.resolved_at),
                "ago": fmt.age(e.resolved_at, now),
                "resolved_by": names.get(_text(e.resolved_by), "unknown"),
                "note": _text(e.resolution_note),
            }
            for e in resolved
        ],
        "updated": fmt.when(now),
    }


def _detail_pairs(detail: Any) -> list[dict[str, str]]:
    if not isinstance(detail, dict):
        return []
    out = []
    for key, value in detail.items():
        if value is None or value == "" or value == [] or key in ("client",):
            continue
        if isinstance(value, list):
            value = ", ".join(_text(v) for v in value)
        out.append({"key": _text(key).replace("_", " "), "value": _text(value)})
    return out


def escalation_page(
    escalations: Escalations, sessions, escalation_id: str, staff: CurrentStaff, now: dt.datetime, fmt: Formatter
) -> dict[str, Any] | None:
    """Everything about one escalation, or None if there is no such escalation; audited."""
    esc = escalations.get(escalation_id)
    with transaction(sessions) as s:
        if esc is None:
            audit(
                s,
                "dashboard_view_escalation",
                actor_type="staff",
                actor_id=str(staff.id),
                found=False,
                requested=escalation_id[:40],
            )
            return None
        outbox = _outbox(s, [esc.id])[esc.id]
        entries = (
            s.execute(
                select(AuditEntry).where(AuditEntry.escalation_id == esc.id).order_by(AuditEntry.at, AuditEntry.id)
            )
            .scalars()
            .all()
        )
        names = _staff_names(
            s, [esc.acknowledged_by, esc.resolved_by] + [a.actor_id for a in entries if a.actor_type == "staff"]
        )
        audit(
            s, "dashboard_view_escalation", actor_type="staff", actor_id=str(staff.id), escalation_id=esc.id, found=True
        )

    def actor(a: AuditEntry) -> str:
        if a.actor_type == "staff":
            return names.get(_text(a.actor_id), f"staff #{a.actor_id}")
        if a.actor_type == "system":
            return "system"
        return f"{a.actor_type} {_text(a.actor_id)}".strip()

    timeline = [
        {
            "when": fmt.when(a.at),
            "what": ACTIONS.get(a.action, a.action.replace("_", " ").capitalize()),
            "action": a.action,
            "who": actor(a),
            "detail": _detail_pairs(a.detail),
            "bad": a.action.endswith(("_failed", "_refused")),
        }
        for a in entries
        if a.action not in HIDDEN_FROM_TIMELINE
    ]
    views = [a for a in entries if a.action in VIEW_ACTIONS]
    findings = []
    for f in esc.findings or []:
        if not isinstance(f, dict):
            continue
        raw_values = f.get("values")
        values: dict[str, Any] = raw_values if isinstance(raw_values, dict) else {}
        findings.append(
            {
                "name": _text(f.get("name") or f.get("concept")),
                "text": _text(f.get("text")),
                "level": _text(f.get("level")),
                "flags": [label for key, label in FLAGS if f.get(key)],
                "values": [{"key": _text(k).replace("_", " "), "value": _text(v)} for k, v in values.items()],
            }
        )
    words = [
        {
            "text": _text(w.get("text")),
            "when": fmt.loose_when(w.get("at")),
            "level": _level(_text(w.get("level")))["word"] if w.get("level") else "",
        }
        for w in esc.patient_words or []
        if isinstance(w, dict)
    ]
    transcript = [
        {
            "who": "Patient"
            if t.get("who") == "patient"
            else ("Assistant" if t.get("who") in ("assistant", "bot") else _text(t.get("who")).capitalize()),
            "patient": t.get("who") == "patient",
            "text": _text(t.get("text")),
            "when": fmt.loose_when(t.get("at")),
        }
        for t in esc.transcript or []
        if isinstance(t, dict)
    ]
    contact = esc.contact if isinstance(esc.contact, dict) else {}
    return {
        "id": esc.id,
        "level": _level(esc.level),
        "status": esc.status,
        "status_text": STATUSES.get(esc.status, esc.status),
        "summary": _text(esc.summary),
        "reasons": [_text(r) for r in esc.reasons or []],
        "findings": findings,
        "words": words,
        "transcript": transcript,
        "contact": _text(contact.get("how") or contact.get("channel")),
        "age": fmt.age(esc.created_at, now),
        "opened": fmt.when(esc.created_at),
        "updated": fmt.when(esc.updated_at),
        "days_since": fmt.days_since(esc.days_since_procedure),
        "acknowledged": {"by": names.get(_text(esc.acknowledged_by), ""), "when": fmt.when(esc.acknowledged_at)}
        if esc.acknowledged_at
        else None,
        "resolved": {
            "by": names.get(_text(esc.resolved_by), ""),
            "when": fmt.when(esc.resolved_at),
            "note": _text(esc.resolution_note),
        }
        if esc.resolved_at
        else None,
        "can_acknowledge": esc.status in ("open", "notified"),
        "can_resolve": esc.status != "resolved",
        "alert": alert_state(outbox, now),
        "deliveries": [
            {
                "id": o.id,
                "kind": o.kind,
                "target": o.target,
                "status": o.status,
                "attempts": o.attempts,
                "queued": fmt.when(o.created_at),
                "sent": fmt.when(o.sent_at),
                "error": _text(o.last_error),
                "bad": o.status == "dead"
                or (o.status in ("pending", "sending") and now - o.created_at > ALERT_OVERDUE),
            }
            for o in outbox
        ],
        "timeline": timeline,
        "views": {
            "count": len(views),
            "last": {"who": actor(views[-1]), "when": fmt.when(views[-1].at)} if views else None,
        },
    }
