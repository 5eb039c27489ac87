"""Escalation to clinic staff: durable records, outbox, timers, audit (no channel code here)."""

from __future__ import annotations

from functools import lru_cache

from .service import Escalations


@lru_cache(maxsize=1)
def get_service() -> Escalations:
    """The process-wide service on settings.database_url (migrated on first use)."""
    from bot import settings
    from bot.store.db import default

    cfg = settings.get()
    return Escalations(
        default().sessions,
        resend_after_minutes=cfg.resend_after_minutes,
        tell_patient_after_minutes=cfg.tell_patient_after_minutes,
        new_per_channel_per_minute=cfg.alerting.new_per_channel_per_minute,
    )
