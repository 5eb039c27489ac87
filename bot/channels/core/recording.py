"""How the gateway records an escalation when it answers a red flag itself (Rasa unavailable)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def plain_record(conversation_id: str, channel: str, decision, text: str, how: str) -> dict[str, Any]:
    """An escalation as plain data (the arguments of Escalations.record), spoolable as JSON."""
    from bot import conversation

    active = [f for f in decision.findings if f.counts and f.level in ("urgent", "emergency")]
    return dict(
        conversation_id=conversation_id,
        channel=channel,
        level=decision.level,
        summary=conversation.summary(active),
        findings=conversation.payload(decision, None)["triage"]["findings"],
        reasons=list(decision.reasons),
        words=text,
        transcript=[],
        days_since_procedure=decision.values.days_since_procedure,
        contact={"channel": channel, "how": how},
    )


def escalation_recorder(channel_how: dict[str, str], spool=None, service=None):
    """The gateway's recorder: an escalation on the clinic's database, as the actions record one;
    when the database will not take it, the record goes to the spool (replayed later)."""

    def commit(record: dict[str, Any]) -> str:
        from bot.escalation import get_service

        return (service or get_service()).record(**record).id

    def record(conversation_id: str, channel: str, decision, text: str) -> str | None:
        plain = plain_record(conversation_id, channel, decision, text, channel_how.get(channel, channel))
        try:
            reference = commit(plain)
        except Exception:
            if spool is None:
                raise
            spool.put(plain)
            return None
        log.info("escalation %s recorded by the gateway (Rasa unavailable)", reference)
        return reference

    record.commit = commit  # type: ignore[attr-defined]  # the spool's replayer uses it
    return record


def consent_checked(commit, has_consent):
    """A spool commit for records made while consent could not be checked (the database was down):
    committed only if the patient had consented; otherwise dropped, never stored."""

    def run(record: dict[str, Any]) -> str | None:
        record = dict(record)
        if record.pop("require_consent", False) and not has_consent(record["conversation_id"]):
            log.info("a spooled escalation was dropped: the patient had not consented to storage")
            return None
        return commit(record)

    return run
