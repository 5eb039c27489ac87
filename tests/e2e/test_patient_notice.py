"""Nobody acknowledged in time: the timers tell the patient, in their own conversation, to call."""
import asyncio
import json
import urllib.request

import pytest

from bot.channels.rasa_api import PatientNotifiers, RasaPatientNotifier
from bot.store.db import Database
from bot.escalation.relay import OutboxRelay
from bot.escalation.service import Escalations

pytestmark = pytest.mark.rasa


class NoStaff:
    async def send_alert(self, view):
        return {"chat_id": 1, "message_id": 1}

    async def update_alert(self, ref, view):
        return None


def test_unacknowledged_escalation_tells_the_patient_to_call_directly(live_bot, tmp_path):
    sender = live_bot.new_sender()
    live_bot.send(sender, "I've got a fever of 38.9")
    db = Database(f"sqlite:///{tmp_path / 'notice.db'}")
    service = Escalations(db.sessions, resend_after_minutes=60, tell_patient_after_minutes=0)
    service.record(sender, "rest", "urgent", "fever", [{"concept": "fever"}], [], "fever 38.9")
    relay = OutboxRelay(db.sessions, service, NoStaff(),
                        patient=PatientNotifiers(RasaPatientNotifier(live_bot.rasa_url, token=live_bot.rasa_secret)))

    async def run():
        service.tick()
        for _ in range(3):
            await relay.run_once()
    asyncio.run(run())
    events = live_bot.api(f"/conversations/{sender}/tracker")["events"]
    said = [e.get("text") or "" for e in events if e.get("event") == "bot"]
    assert any("haven't picked up my alert yet" in t and "020 7946 0321" in t for t in said), said[-3:]
