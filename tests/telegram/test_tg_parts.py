"""The parts: formatting, opaque ids, patient records, the timers' Telegram notice, the supervisor."""
import asyncio
import datetime as dt
import os
import stat

import pytest
from sqlalchemy import select
from support.telegram_emulator import TelegramEmulator
from tg_support import CLINIC_PHONE, SECRET, STAFF_CHAT

from bot import patients
from bot.channels.telegram import format as fmt
from bot.channels.telegram.api import make_bot
from bot.channels.telegram.gateway import answers_from_rasa
from bot.channels.telegram.identity import load_secret, opaque_id
from bot.channels.telegram.notifier import TelegramPatientNotifier
from bot.channels.telegram.staff import TelegramStaffNotifier
from bot.escalation.relay import OutboxRelay, PermanentError
from bot.escalation.service import Escalations
from bot.store import telegram_inbox as inbox
from bot.store.models import OutboxMessage


# -- format ---------------------------------------------------------------------------------------------
def test_split_keeps_every_word_in_order_and_prefers_paragraphs():
    paragraphs = ["A" * 3000, "B" * 3000, "C " * 2500]
    chunks = fmt.split_text("\n\n".join(paragraphs))
    assert chunks[0] == "A" * 3000 and chunks[1] == "B" * 3000
    assert all(fmt.size(fmt.escape(c)) <= 4096 for c in chunks)
    assert "".join(chunks).replace(" ", "") == "".join(paragraphs).replace(" ", "")


def test_split_counts_the_escaped_text_and_utf16_units():
    for text in ("&" * 5000, "<" * 9000, "🙂" * 5000, "x" * 10000):
        chunks = fmt.to_html(text)
        assert len(chunks) > 1
        assert all(fmt.size(c) <= 4096 for c in chunks)
        assert fmt.plain(chunks).replace("\n", "") == text


def test_sentences_are_not_cut_when_a_paragraph_is_too_long():
    sentence = "The dye leaks out for a few days as a sticky discharge. "
    chunks = fmt.split_text(sentence * 150)
    assert len(chunks) == 3 and all(c.endswith("discharge.") for c in chunks)


def test_emergency_emphasis_and_escaping():
    assert fmt.to_html("Call 999 now. Then <b>tell</b> them & wait.", emphasis=True) == [
        "<b>Call 999 now.</b> Then &lt;b&gt;tell&lt;/b&gt; them &amp; wait."]
    assert fmt.to_html("Call 020 7946 0321") == ["Call 020 7946 0321"]          # digits left plain


def test_rasa_answers_to_outs():
    outs = answers_from_rasa([
        {"text": "Call 999 now. Go."}, {"text": "Second part."},
        {"custom": {"triage": {"level": "emergency"}}},
        {"text": "Pain?", "buttons": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]},
        {"image": "https://example.org/x.png"}, {"custom": {"something": "else"}}])
    assert [(o.text, o.emphasis) for o in outs] == [("Call 999 now. Go.", True), ("Second part.", False),
                                                   ("Pain?", False)]
    assert outs[2].quick_replies == [("Yes", "/affirm"), ("No", "/deny")]


def test_keyboards():
    k = fmt.keyboard([str(n) for n in range(11)]).to_dict()
    assert k["one_time_keyboard"] and len(k["keyboard"]) == 2
    assert fmt.keyboard(["Less than 1", "1", "2 or more"]).to_dict()["keyboard"] == [
        [{"text": "Less than 1"}, {"text": "1"}, {"text": "2 or more"}]]


# -- identity -------------------------------------------------------------------------------------------
def test_opaque_ids_are_stable_fit_the_columns_and_hide_the_chat_id():
    a, b = opaque_id(SECRET, 123456789), opaque_id(SECRET, 123456790)
    assert a == opaque_id(SECRET, "123456789") and a != b
    assert a.startswith("tg-") and len(a) == 64 and "123456789" not in a
    assert opaque_id(b"another secret entirely", 123456789) != a


def test_the_secret_is_generated_once_private_and_env_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("TELEGRAM_ID_SECRET", raising=False)
    first = load_secret(tmp_path)
    path = tmp_path / "telegram_id_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(tmp_path) == first and len(first) >= 32
    os.chmod(path, 0o644)
    assert load_secret(tmp_path) == first and stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.setenv("TELEGRAM_ID_SECRET", "from-the-environment-1234")
    assert load_secret(tmp_path) == b"from-the-environment-1234"
    monkeypatch.setenv("TELEGRAM_ID_SECRET", "short")
    with pytest.raises(ValueError):
        load_secret(tmp_path)


# -- patient records ------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_db(request, tmp_path):
    from support.databases import throwaway_database
    with throwaway_database(request.param, tmp_path) as database:
        yield database


def test_contacts_consent_and_forget(fresh_db):
    db = fresh_db
    cid = opaque_id(SECRET, 42)
    assert patients.lookup(cid, db.sessions) is None and not patients.has_consent(cid, db.sessions)
    patients.upsert_contact(cid, "telegram", "42", sessions=db.sessions)
    assert not patients.has_consent(cid, db.sessions)
    contact = patients.record_consent(cid, "telegram", "42", sessions=db.sessions)
    assert contact.consented and patients.lookup_address("telegram", "42", db.sessions).conversation_id == cid
    service = Escalations(db.sessions)
    service.record(cid, "telegram", "urgent", "fever", [{"concept": "fever"}], ["fever"], "hot", [], None,
                   {"channel": "telegram"})
    result = patients.forget(cid, "telegram", "42", sessions=db.sessions)
    assert result.contact_deleted and result.escalations_kept == 1
    assert patients.lookup(cid, db.sessions) is None
    assert len(service.queue()) >= 1                    # the clinical record stays


def test_inbox_orders_dedupes_and_reduces(fresh_db):
    db = fresh_db
    for uid in (30, 10, 20):
        assert inbox.store_update(uid, {"update_id": uid, "message": {"text": "t", "chat": {"id": 5}}}, db.sessions)
    assert not inbox.store_update(10, {"update_id": 10}, db.sessions)
    assert [u for u, _ in inbox.pending_updates(sessions=db.sessions)] == [10, 20, 30]
    assert [u for u, _ in inbox.pending_updates(exclude={10}, sessions=db.sessions)] == [20, 30]
    inbox.mark_update_processed(10, db.sessions)
    assert inbox.update_state(10, db.sessions)["payload"] == {"update_id": 10, "chat_id": "5"}
    for _ in range(5):
        inbox.record_update_failure(20, 5, db.sessions)
    assert [u for u, _ in inbox.pending_updates(sessions=db.sessions)] == [30]
    assert inbox.prune_updates(dt.timedelta(seconds=-1), db.sessions) == 2     # 10 and the given-up 20


# -- the timers' notice ---------------------------------------------------------------------------------
def test_the_unacknowledged_notice_reaches_a_telegram_patient_through_the_relay(db):
    from bot.wiring import patient_notifiers

    chat = 7_777_001
    cid = opaque_id(SECRET, chat)
    patients.record_consent(cid, "telegram", str(chat), sessions=db.sessions)
    now = dt.datetime(2030, 1, 1, 9, 0)
    service = Escalations(db.sessions, clock=lambda: now)
    ref = service.record(cid, "telegram", "urgent", "fever", [], [], "I have a fever", [], None,
                         {"channel": "telegram", "how": "Telegram chat with the clinic's bot"}).id
    service.clock = lambda: now + dt.timedelta(minutes=21)
    assert service.tick() >= 1

    async def relay_once(emu):
        async with make_bot(emu.token, emu.base_url) as bot:
            relay = OutboxRelay(db.sessions, service, TelegramStaffNotifier(bot, STAFF_CHAT),
                                patient=patient_notifiers(bot, "http://127.0.0.1:9", db.sessions))
            await relay.run_once()

    with TelegramEmulator() as emu:
        asyncio.run(relay_once(emu))
        (notice,) = emu.sent_messages(chat)          # routed by the escalation's contact channel
        assert "haven't picked up" in notice["text"] and CLINIC_PHONE in notice["text"]
        assert any(ref in t for t in emu.sent_texts(STAFF_CHAT))
    with db.sessions() as s:
        row = s.execute(select(OutboxMessage).where(OutboxMessage.escalation_id == ref,
                                                    OutboxMessage.kind == "patient_notice")).scalars().one()
        assert row.status == "sent" and str(chat) not in str(row.result)


def test_no_contact_no_notice(db):
    from bot.escalation.relay import AlertView

    view = AlertView(id="H-AAAAAA", kind="patient_notice", level="urgent", status="notified", summary="",
                     reasons=[], findings=[], patient_words=[], days_since_procedure=None,
                     contact={"channel": "telegram"}, conversation_id=opaque_id(SECRET, 1),
                     created_at=dt.datetime(2030, 1, 1))

    async def notify(emu):
        async with make_bot(emu.token, emu.base_url) as bot:
            await TelegramPatientNotifier(bot, db.sessions).notify_patient(view)

    with TelegramEmulator() as emu:
        with pytest.raises(PermanentError):
            asyncio.run(notify(emu))
        assert emu.sent_messages() == []


# -- supervisor -----------------------------------------------------------------------------------------
def test_supervisor_starts_telegram_and_the_relay(monkeypatch):
    from bot.supervisor import services

    monkeypatch.delenv("TELEGRAM_STAFF_CHAT_ID", raising=False)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    # the relay (alerts and timers) always runs; Telegram only with its token
    assert {s.name for s in services("m.tar.gz")} & {"telegram", "relay"} == {"relay"}
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:x")
    names = {s.name: s for s in services("m.tar.gz")}
    assert names["telegram"].argv[-3:] == ["telegram", "--rasa-url", "http://localhost:5005"]
    assert names["relay"].argv[-2:] == ["bot", "relay"]
    monkeypatch.setenv("TELEGRAM_STAFF_CHAT_ID", "-100123")
    names = {s.name: s for s in services("m.tar.gz")}
    assert names["relay"].argv[-2:] == ["bot", "relay"]
