"""End to end: red flag through REST -> escalation row -> staff chat alert (Bot API emulator)
-> a roster nurse presses Acknowledge -> status acknowledged, message edited, audit written."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bot.store.models import AuditEntry, Escalation
from support.telegram_emulator import TelegramEmulator

pytestmark = pytest.mark.rasa
ROOT = Path(__file__).resolve().parents[2]
STAFF_CHAT = -1009876543
NURSE_TG, STRANGER_TG = 4242001, 666


@pytest.fixture(scope="module")
def staff_side(live_bot):
    """The relay and the Telegram bot, on the emulator, sharing the live bot's database."""
    with TelegramEmulator() as emu:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TELEGRAM_BOT_TOKEN": emu.token,
               "TELEGRAM_API_BASE_URL": emu.base_url, "TELEGRAM_STAFF_CHAT_ID": str(STAFF_CHAT),
               "HSG_RELAY_BACKOFF_BASE": "0.2"}
        add = subprocess.run([sys.executable, "-m", "bot", "staff", "add", "Nurse Bea", "--telegram-id",
                              str(NURSE_TG), "--password-stdin"], cwd=ROOT, env=env, input="a long dashboard pass\n",
                             capture_output=True, text=True)
        assert add.returncode == 0, add.stderr
        procs = [subprocess.Popen([sys.executable, "-m", "bot", cmd], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for cmd in ("relay", "telegram")]
        emu.wait_for("getUpdates", timeout=60)      # the Telegram bot is polling
        try:
            yield emu
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=20)


def db():
    return Session(create_engine(os.environ["DATABASE_URL"], future=True))


def test_red_flag_to_acknowledged(live_bot, staff_side):
    emu = staff_side
    sender = live_bot.new_sender()
    responses = live_bot.send(sender, "I've been vomiting all morning and my temperature is 38.6")
    payload = live_bot.triage(responses)
    assert payload["level"] == "urgent" and payload["escalation_id"]
    ref = payload["escalation_id"]
    assert "alerted the clinic's nurses" in responses[0]["text"] and ref in responses[0]["text"]
    with db() as s:
        esc = s.get(Escalation, ref)
        assert esc.conversation_id == sender and esc.level == "urgent"

    emu.wait_until(lambda: any(ref in t for t in emu.sent_texts(STAFF_CHAT)), timeout=30,
                   what=f"the alert for {ref}")
    message_id = [m for m in emu.sent_messages(STAFF_CHAT) if ref in m["text"]][0]["message_id"]

    # someone not on the roster presses Acknowledge: refused and audited
    emu.push_callback_query(STAFF_CHAT, message_id, f"ack:{ref}", user_id=STRANGER_TG)
    emu.wait_until(lambda: any(a.get("show_alert") for a in emu.callback_answers), timeout=20,
                   what="refusal answered")
    with db() as s:
        assert s.get(Escalation, ref).status == "notified"

    # the roster nurse presses Acknowledge
    emu.push_callback_query(STAFF_CHAT, message_id, f"ack:{ref}", user_id=NURSE_TG)
    edit = emu.wait_for("editMessageText", timeout=30, message_id=message_id)
    assert "Acknowledged</b> by Nurse Bea" in edit.params["text"]
    with db() as s:
        esc = s.get(Escalation, ref)
        assert esc.status == "acknowledged" and esc.acknowledged_at is not None
        actions = [(a.action, a.actor_type, a.actor_id) for a in s.execute(
            select(AuditEntry).where(AuditEntry.escalation_id == ref).order_by(AuditEntry.id)).scalars()]
    assert ("acknowledge_refused", "unknown", f"telegram:{STRANGER_TG}") in actions
    assert any(a[0] == "acknowledged" and a[1] == "staff" for a in actions)
    assert ("alert_delivered", "system", None) in actions


def test_a_second_red_flag_updates_and_an_emergency_realerts(live_bot, staff_side):
    emu = staff_side
    sender = live_bot.new_sender()
    first = live_bot.triage(live_bot.send(sender, "I've got chills"))["escalation_id"]
    again = live_bot.triage(live_bot.send(sender, "still shivering"))["escalation_id"]
    worse = live_bot.triage(live_bot.send(sender, "now I can't breathe properly"))
    assert first == again == worse["escalation_id"] and worse["level"] == "emergency"
    emu.wait_until(lambda: sum(first in t for t in emu.sent_texts(STAFF_CHAT)) == 2, timeout=30,
                   what="alert and re-alert")
    time.sleep(2)
    assert sum(first in t for t in emu.sent_texts(STAFF_CHAT)) == 2
