"""Without Telegram the relay still runs: alerts go to the dashboard target and the timers fire."""
import asyncio

from bot import wiring
from bot.store.db import Database
from bot.escalation.relay import OutboxRelay
from bot.escalation.service import Escalations
from bot.store.models import OutboxMessage
from sqlalchemy import select


class Patients:
    def __init__(self):
        self.told = []

    async def notify_patient(self, view):
        self.told.append(view.id)
        return {"delivered_via": "test"}


def test_build_relay_without_telegram_uses_the_dashboard(monkeypatch, tmp_path):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("TELEGRAM_STAFF_CHAT_ID", raising=False)
    wiring.settings_mod.get.cache_clear()
    try:
        relay = wiring.build_relay()
    finally:
        wiring.settings_mod.get.cache_clear()
    assert isinstance(relay.staff, wiring.DashboardTarget)


def test_the_timers_run_and_the_patient_is_told_without_telegram(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'relay.db'}")
    service = Escalations(db.sessions, resend_after_minutes=0, tell_patient_after_minutes=0)
    recorded = service.record("web-abc", "web", "urgent", "fever", [{"concept": "fever"}], [], "fever 38.9")
    patients = Patients()
    relay = OutboxRelay(db.sessions, service, wiring.DashboardTarget(), patient=patients)

    async def run():
        for _ in range(3):
            service.tick()
            await relay.run_once()
    asyncio.run(run())
    assert patients.told == [recorded.id]
    with db.sessions() as s:
        rows = s.execute(select(OutboxMessage).where(OutboxMessage.escalation_id == recorded.id)).scalars().all()
    kinds = {r.kind: r.status for r in rows}
    assert kinds.get("alert") == "sent" and kinds.get("patient_notice") == "sent"
    assert any(r.kind not in ("alert", "patient_notice") for r in rows)       # the re-alert timer fired too
    db.dispose()
