"""End to end: a Telegram patient through the gateway process, the real Rasa and action server.

`python -m bot telegram --rasa-url <live Rasa>` polls the Bot API emulator; the patient starts,
agrees, reports a fever with chills, and gets the urgent answer with the clinic's number; the
escalation is recorded under the opaque conversation id, and the chat id is nowhere but in the
patient's contact row.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session
from support.telegram_emulator import TelegramEmulator
from tg_support import CLINIC_PHONE, consent_message, say, wait_messages

from bot.channels.telegram.identity import opaque_id
from bot.store.models import Escalation, OutboxMessage, PatientContact

pytestmark = pytest.mark.rasa
ROOT = Path(__file__).resolve().parents[2]
ID_SECRET = "live-test-telegram-id-secret-42"
PATIENT, FORGETFUL, TRACKED = 5_550_123_456, 5_550_123_457, 5_550_123_458


@pytest.fixture(scope="module")
def telegram(live_bot, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tg-live")
    with TelegramEmulator() as emu:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TELEGRAM_BOT_TOKEN": emu.token,
               "TELEGRAM_API_BASE_URL": emu.base_url, "TELEGRAM_ID_SECRET": ID_SECRET,
               "HSG_DATA_DIR": str(tmp), "RASA_ENDPOINTS": str(live_bot.tmp / "endpoints.yml"),
               "RASA_AUTH_TOKEN": live_bot.rasa_secret}
        env.pop("TELEGRAM_STAFF_CHAT_ID", None)
        with open(tmp / "telegram.log", "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "bot", "telegram", "--rasa-url", live_bot.rasa_url],
                                    cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                emu.wait_for("getUpdates", timeout=60)
                yield emu
            finally:
                proc.terminate()
                proc.wait(timeout=20)
                _leave_no_pending_alerts()
        logged = (tmp / "telegram.log").read_text()
        assert "bot123456:" not in logged                                   # no token in the logs
        assert "38.7" not in logged and "what is an HSG" not in logged      # no patient text either
        assert str(PATIENT) not in logged                                   # nor chat ids


def _leave_no_pending_alerts():
    """No relay runs here: this module's staff alerts would stay pending in the session's shared
    database and be sent first by another module's relay (tests/e2e/test_escalation_flow.py takes
    the first alert it sees as its own)."""
    ids = [opaque_id(ID_SECRET.encode(), chat) for chat in (PATIENT, FORGETFUL, TRACKED)]
    with db() as s, s.begin():
        refs = select(Escalation.id).where(Escalation.conversation_id.in_(ids))
        s.execute(update(OutboxMessage).where(OutboxMessage.escalation_id.in_(refs),
                                              OutboxMessage.status == "pending")
                  .values(status="dead", last_error="tests/telegram: no relay in this test")
                  .execution_options(synchronize_session=False))


def db():
    return Session(create_engine(os.environ["DATABASE_URL"], future=True))


def tracker(live_bot, conversation_id):
    return live_bot.api(f"/conversations/{conversation_id}/tracker?include_events=ALL")


def settle(emu, chat, quiet=0.8):
    """Wait until the bot has stopped answering (an answer can be several messages)."""
    count, since = -1, time.monotonic()
    while time.monotonic() - since < quiet:
        if len(emu.sent_messages(chat)) != count:
            count, since = len(emu.sent_messages(chat)), time.monotonic()
        time.sleep(0.1)


def agree(emu, chat):
    say(emu, chat, "/start", expect=2)
    before = len(emu.sent_messages(chat))
    emu.push_callback_query(chat, consent_message(emu, chat)["message_id"], "consent:yes")
    wait_messages(emu, chat, before + 1)


def test_a_telegram_patient_from_start_to_an_urgent_answer(live_bot, telegram):
    emu = telegram
    agree(emu, PATIENT)
    before = len(emu.sent_messages(PATIENT))
    emu.push_message(PATIENT, "I have a fever of 38.7 and chills")
    emu.wait_until(lambda: any(CLINIC_PHONE in m["text"] for m in emu.sent_messages(PATIENT)[before:]),
                   timeout=60, what="the urgent answer")
    answer = next(m["text"] for m in emu.sent_messages(PATIENT)[before:] if CLINIC_PHONE in m["text"])
    assert answer.startswith(f"Please call the clinic now on {CLINIC_PHONE}")

    cid = opaque_id(ID_SECRET.encode(), PATIENT)
    with db() as s:
        esc = s.execute(select(Escalation).where(Escalation.conversation_id == cid)).scalars().one()
        contact = s.get(PatientContact, cid)
        assert esc.level == "urgent" and esc.contact["channel"] == "telegram"
        assert esc.id in answer                                     # "alerted the clinic's nurses (reference ...)"
        record = json.dumps({c.name: getattr(esc, c.name) for c in Escalation.__table__.columns}, default=str)
        assert str(PATIENT) not in record
        assert contact.address == str(PATIENT) and contact.consent_at is not None   # the one place it is kept

    # (past the gateway's red-flag budget the answer is the engine's, and Rasa's turn finishes after it)
    deadline = time.monotonic() + 60
    while True:
        users = [e for e in tracker(live_bot, cid)["events"] if e["event"] == "user"]
        if users or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [e["text"] for e in users] == ["I have a fever of 38.7 and chills"]   # nothing before consent
    assert users[0]["input_channel"] == "telegram"
    assert not [e for e in tracker(live_bot, str(PATIENT))["events"] if e["event"] == "user"]


def test_forget_empties_rasas_tracker(live_bot, telegram):
    emu = telegram
    agree(emu, TRACKED)
    say(emu, TRACKED, "what is an HSG?", timeout=60)
    settle(emu, TRACKED)
    say(emu, TRACKED, "/forget", expect=3, timeout=30)
    cid = opaque_id(ID_SECRET.encode(), TRACKED)
    assert not [e for e in tracker(live_bot, cid)["events"] if e["event"] in ("user", "bot")]


def test_forget_tells_the_truth_about_rasas_copy(live_bot, telegram):
    emu = telegram
    agree(emu, FORGETFUL)
    say(emu, FORGETFUL, "what is an HSG?", timeout=60)
    settle(emu, FORGETFUL)
    cid = opaque_id(ID_SECRET.encode(), FORGETFUL)
    answers = say(emu, FORGETFUL, "/forget", expect=3, timeout=30)
    kept = [e for e in tracker(live_bot, cid)["events"] if e["event"] in ("user", "bot")]
    assert not kept
    assert "deleted our conversation" in answers[0]["text"]
    with db() as s:
        assert s.get(PatientContact, cid) is None
