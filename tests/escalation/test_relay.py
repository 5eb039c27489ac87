"""The outbox relay against the Telegram Bot API emulator: delivery, retries, edits, no loss."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.channels.telegram.api import make_bot
from bot.channels.telegram.staff import TelegramStaffNotifier
from bot.store.models import OutboxMessage
from bot.escalation.relay import OutboxRelay
from support.relay import drain
from support.telegram_emulator import TelegramEmulator

ROOT = Path(__file__).resolve().parents[2]
STAFF_CHAT = -1001234567
FINDINGS = [{"concept": "vomiting", "level": "urgent", "text": "vomiting"}]


@pytest.fixture
def emu():
    with TelegramEmulator() as e:
        yield e


def record(service, conv="conv-r", level="urgent", words="I keep <b>vomiting</b> & shaking"):
    return service.record(conv, "rest", level, "vomiting", FINDINGS, ["vomiting -> urgent"], words,
                          days_since_procedure=2, contact={"channel": "rest", "how": "web chat page"})


def relay_for(database, service, emu, **kw):
    bot = make_bot(emu.token, emu.base_url)
    return OutboxRelay(database.sessions, service, TelegramStaffNotifier(bot, STAFF_CHAT),
                       is_postgres=database.is_postgres, backoff_base=0.05, **kw), bot


def rows(database, target=None):
    """The outbox rows per target (the '*' row each staff alert starts as is fanned out)."""
    with database.sessions() as s:
        q = select(OutboxMessage).where(OutboxMessage.target != "*").order_by(OutboxMessage.id)
        if target:
            q = q.where(OutboxMessage.target == target)
        return s.execute(q).scalars().all()


def status_of(database, target):
    found = rows(database, target)
    return found[0].status if found else None


def test_alert_reaches_the_staff_chat_with_buttons_and_escaped_text(database, service, emu):
    r = record(service)
    relay, bot = relay_for(database, service, emu)
    drain(relay, bot, rounds=3)
    [msg] = emu.sent_messages(STAFF_CHAT)
    assert r.id in msg["text"] and "URGENT" in msg["text"]
    assert "&lt;b&gt;vomiting&lt;/b&gt; &amp; shaking" in emu.calls_to("sendMessage")[0].params["text"]
    buttons = [b["callback_data"] for row in msg["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == [f"ack:{r.id}", f"res:{r.id}"]
    assert service.get(r.id).status == "notified"
    assert [x.status for x in rows(database)] == ["sent"]


def test_429_and_500_are_retried_and_nothing_is_lost_or_doubled(database, service, emu):
    emu.fail_next("sendMessage", status=429, retry_after=1, times=1)
    emu.fail_next("sendMessage", status=500, times=2)
    ids = [record(service, conv=f"conv-{i}").id for i in range(5)]
    relay, bot = relay_for(database, service, emu)
    drain(relay, bot, rounds=60, pause=0.1)
    texts = emu.sent_texts(STAFF_CHAT)
    for ref in ids:
        assert sum(ref in t for t in texts) == 1, f"{ref} delivered {sum(ref in t for t in texts)} times"
    assert emu.fault_count("sendMessage") == 3
    assert all(x.status == "sent" for x in rows(database))
    assert sum(x.attempts for x in rows(database)) == 5 + 3     # one extra attempt per fault


def test_acknowledge_edits_the_alert(database, service, emu, nurse):
    r = record(service)
    relay, bot = relay_for(database, service, emu)
    drain(relay, bot, rounds=2)
    service.acknowledge(r.id, None, "telegram", telegram_user_id=nurse.telegram_user_id)
    drain(relay, bot, rounds=2)
    [edit] = emu.calls_to("editMessageText")
    assert "Acknowledged</b> by Nurse Ada" in edit.params["text"]
    buttons = [b["callback_data"] for row in edit.params["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == [f"res:{r.id}"]


def test_a_bad_request_is_dead_lettered_and_audited(database, service, emu):
    emu.fail_next("sendMessage", status=400, times=1, description="Bad Request: chat not found")
    record(service)
    relay, bot = relay_for(database, service, emu)
    drain(relay, bot, rounds=2)
    [row] = rows(database)
    assert row.status == "dead" and "chat not found" in row.last_error.lower()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_relay_killed_between_commit_and_send_delivers_exactly_once_after_restart(database, service, emu):
    r = record(service)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database.url,
           "TELEGRAM_BOT_TOKEN": emu.token, "TELEGRAM_API_BASE_URL": emu.base_url,
           "TELEGRAM_STAFF_CHAT_ID": str(STAFF_CHAT), "HSG_RELAY_LEASE_SECONDS": "2",
           "HSG_RELAY_PAUSE_BEFORE_SEND": "60"}
    relay = subprocess.Popen([sys.executable, "-m", "bot", "relay"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and status_of(database, "telegram") != "sending":
            time.sleep(0.2)
        assert status_of(database, "telegram") == "sending", "the relay never claimed the alert"
        relay.send_signal(signal.SIGKILL)          # dies after the commit, before the send
        relay.wait(timeout=10)
        assert emu.sent_messages(STAFF_CHAT) == []
        env.pop("HSG_RELAY_PAUSE_BEFORE_SEND")
        relay = subprocess.Popen([sys.executable, "-m", "bot", "relay"], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        emu.wait_for("sendMessage", timeout=60)
        time.sleep(3)                               # a duplicate would arrive in this time
        texts = emu.sent_texts(STAFF_CHAT)
        assert sum(r.id in t for t in texts) == 1
        assert status_of(database, "telegram") == "sent"
    finally:
        relay.terminate()
        relay.wait(timeout=20)
