"""Alert targets: every staff alert reaches every configured target (Telegram staff chat, email,
the dashboard) exactly once, emergencies go first, and a flood becomes a digest."""
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import wiring
from bot.channels.email import EmailNotifier
from bot.channels.telegram.api import make_bot
from bot.channels.telegram.staff import TelegramStaffNotifier
from bot.store.models import OutboxMessage
from bot.escalation.relay import OutboxRelay
from bot.settings import Smtp
from support.relay import drain
from support.smtp import SmtpServer
from support.telegram_emulator import TelegramEmulator

ROOT = Path(__file__).resolve().parents[2]
STAFF_CHAT = -1009876543
SECRET_WORDS = "my temperature is 39.1 and I feel awful"
FINDINGS = [{"concept": "fever", "level": "urgent", "text": "fever"}]


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def emu():
    with TelegramEmulator() as e:
        yield e


def record(service, conv, level="urgent", channel="rest"):
    return service.record(conv, channel, level, "fever", FINDINGS, [f"fever -> {level}"], SECRET_WORDS,
                          days_since_procedure=2, contact={"channel": channel, "how": "web chat page"})


def smtp_settings(port):
    return Smtp(host="127.0.0.1", port=port, sender="hsg-bot@clinic.test", recipients=("nurses@clinic.test",))


def rows(database, target=None):
    with database.sessions() as s:
        q = select(OutboxMessage).where(OutboxMessage.target != "*").order_by(OutboxMessage.id)
        if target:
            q = q.where(OutboxMessage.target == target)
        return s.execute(q).scalars().all()


def test_each_alert_goes_to_every_target_once_and_email_holds_no_health_data(database, service, emu, smtp):
    bot = make_bot(emu.token, emu.base_url)
    targets = {"telegram": TelegramStaffNotifier(bot, STAFF_CHAT), "dashboard": wiring.DashboardTarget(),
               "email": EmailNotifier(smtp_settings(smtp.port), "Riverside", "https://clinic.test/staff/")}
    relay = OutboxRelay(database.sessions, service, targets, is_postgres=database.is_postgres, backoff_base=0.05)
    r = record(service, "conv-t1")
    drain(relay, bot, rounds=3, pause=0.05)
    assert sorted((x.target, x.status) for x in rows(database)) == [
        ("dashboard", "sent"), ("email", "sent"), ("telegram", "sent")]
    [mail] = smtp.inbox.messages
    body = mail.get_content()
    assert r.id in mail["Subject"] and "URGENT" in mail["Subject"] and "https://clinic.test/staff/" in body
    assert "39.1" not in body and "fever" not in body.lower() and "conv-t1" not in body   # no health data
    assert sum(r.id in t for t in emu.sent_texts(STAFF_CHAT)) == 1
    assert service.get(r.id).staff_message["telegram"]["message_id"]


def test_a_target_added_later_still_gets_the_alerts_queued_before(database, service):
    """Staff rows are fanned out by the relay that delivers, not by the process that recorded."""
    r = record(service, "conv-t2")
    relay = OutboxRelay(database.sessions, service, {"dashboard": wiring.DashboardTarget()})
    asyncio.run(relay.run_once())
    assert [(x.target, x.escalation_id) for x in rows(database)] == [("dashboard", r.id)]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_telegram_and_email_each_once_across_a_relay_sigkill_and_an_smtp_restart(database, service, emu, smtp):
    first = record(service, "conv-k1")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database.url,
           "TELEGRAM_BOT_TOKEN": emu.token, "TELEGRAM_API_BASE_URL": emu.base_url,
           "TELEGRAM_STAFF_CHAT_ID": str(STAFF_CHAT), "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port),
           "ALERT_EMAIL_FROM": "hsg-bot@clinic.test", "ALERT_EMAIL_TO": "nurses@clinic.test",
           "HSG_RELAY_LEASE_SECONDS": "2", "HSG_RELAY_BACKOFF_BASE": "1.5", "HSG_RELAY_PAUSE_BEFORE_SEND": "60"}
    relay = subprocess.Popen([sys.executable, "-m", "bot", "relay"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not any(x.status == "sending" for x in rows(database)):
            time.sleep(0.2)
        assert any(x.status == "sending" for x in rows(database)), "the relay never claimed the alert"
        relay.send_signal(signal.SIGKILL)                    # dies after claiming, before sending
        relay.wait(timeout=10)
        assert emu.sent_messages(STAFF_CHAT) == [] and smtp.inbox.messages == []
        smtp.stop()                                          # the mail server goes down ...
        env.pop("HSG_RELAY_PAUSE_BEFORE_SEND")
        relay = subprocess.Popen([sys.executable, "-m", "bot", "relay"], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        second = record(service, "conv-k2")
        emu.wait_for("sendMessage", timeout=60)
        deadline = time.time() + 30
        while time.time() < deadline and not all(x.last_error for x in rows(database, "email")):
            time.sleep(0.2)
        assert all(x.status == "pending" and x.last_error for x in rows(database, "email"))
        smtp.start()                                         # ... and comes back on the same port
        deadline = time.time() + 60
        while time.time() < deadline and not all(x.status == "sent" for x in rows(database)):
            time.sleep(0.2)
        time.sleep(3)                                        # a duplicate would arrive in this time
        for ref in (first.id, second.id):
            assert sum(ref in t for t in emu.sent_texts(STAFF_CHAT)) == 1, ref
            assert sum(ref in s for s in smtp.inbox.subjects()) == 1, ref
        assert all(x.status == "sent" for x in rows(database))
    finally:
        relay.terminate()
        relay.wait(timeout=20)


def test_a_burst_of_200_sends_the_emergency_first_and_folds_the_flood_into_a_digest(database, service, emu):
    refs = [record(service, f"burst-{i}", channel=f"src-{i % 10}").id for i in range(199)]
    emergency = record(service, "burst-emergency", level="emergency").id
    burst_end = time.time()
    bot = make_bot(emu.token, emu.base_url)
    relay = OutboxRelay(database.sessions, service, TelegramStaffNotifier(bot, STAFF_CHAT, max_per_minute=20),
                        is_postgres=database.is_postgres, backoff_base=0.05)
    drain(relay, bot, rounds=15, pause=0.05)
    log = [c for c in emu.call_log if c.method == "sendMessage"]
    first = log[0]
    print(f"\nburst of 200: first Telegram message {first.received_at - burst_end:.3f} s after the burst "
          f"(the emergency); {len(log)} messages in all")
    assert emergency in first.params["text"] and "EMERGENCY" in first.params["text"]
    assert first.received_at - burst_end < 5
    texts = [c.params["text"] for c in log]
    assert len(texts) == 21                   # the emergency, 19 urgents, then one digest
    assert "180 new urgent escalations" in texts[-1]
    for ref in refs:                          # every urgent alert is either sent or in the digest
        assert sum(ref in t for t in texts[:-1]) + (ref in texts[-1] or 0) <= 1
    assert {x.status for x in rows(database)} == {"sent", "digested"}
    assert sum(x.status == "digested" for x in rows(database)) == 180


def test_a_flood_from_one_channel_is_recorded_but_alerted_after_the_others(database, service):
    service.new_per_channel_per_minute = 3
    flood = [record(service, f"flood-{i}", channel="rest") for i in range(5)]
    calm = record(service, "calm-1", channel="telegram")
    with database.sessions() as s:
        prio = {r.escalation_id: r.priority for r in s.execute(select(OutboxMessage)).scalars()}
    assert [prio[f.id] for f in flood] == [1, 1, 1, 3, 3] and prio[calm.id] == 1
    assert all(service.get(f.id) is not None for f in flood)      # nothing is dropped


def test_the_targets_in_use_are_the_listed_ones_whose_settings_are_present(monkeypatch, tmp_path):
    from bot import settings
    for var in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_STAFF_CHAT_ID", "SMTP_HOST", "ALERT_EMAIL_FROM", "ALERT_EMAIL_TO",
                "HSG_ALERT_TARGETS"):
        monkeypatch.delenv(var, raising=False)
    assert settings.load().staff_targets() == ("dashboard",)
    monkeypatch.setenv("SMTP_HOST", "mail.clinic.test")
    monkeypatch.setenv("ALERT_EMAIL_FROM", "bot@clinic.test")
    monkeypatch.setenv("ALERT_EMAIL_TO", "a@clinic.test, b@clinic.test")
    monkeypatch.setenv("SMTP_PORT", "2525")
    cfg = settings.load()
    assert cfg.staff_targets() == ("email", "dashboard") and cfg.smtp.recipients == ("a@clinic.test", "b@clinic.test")
    assert cfg.smtp.port == 2525 and sorted(wiring.staff_targets(cfg)) == ["dashboard", "email"]
    monkeypatch.setenv("HSG_ALERT_TARGETS", "telegram,dashboard")        # email listed no more
    assert settings.load().staff_targets() == ("dashboard",)
    monkeypatch.setenv("HSG_ALERT_TARGETS", "pager")
    with pytest.raises(ValueError, match="unknown target"):
        settings.load()
