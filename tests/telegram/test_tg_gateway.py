"""The patients' Telegram gateway against the Bot API emulator and a stub Rasa (polling mode)."""
import json
import time

from sqlalchemy import select
from support.telegram_emulator import TelegramEmulator
from tg_support import (
    CLINIC_PHONE,
    EMERGENCY,
    STAFF_CHAT,
    Harness,
    consent_message,
    conv_id,
    free_port,
    give_consent,
    say,
    send_calls,
    wait_messages,
)

from bot import patients
from bot.channels.telegram.format import plain
from bot.store import telegram_inbox as inbox
from bot.store.models import AuditEntry, Conversation, Escalation, PatientContact


def audit_actions(db, conversation_id):
    with db.sessions() as s:
        return [a.action for a in s.execute(select(AuditEntry).where(AuditEntry.actor_id == conversation_id)
                                            .order_by(AuditEntry.id)).scalars()]


# -- /start and consent ---------------------------------------------------------------------------------
def test_start_says_who_the_bot_is_and_asks_consent_with_buttons(bot, emu, chat):
    intro, request = say(emu, chat, "/start", expect=2)
    text = intro["text"]
    for words in ("aftercare assistant", "automated", "not a person", "not a doctor", "warning signs",
                  "questions about the HSG", "diagnose", "not an emergency service", f"call {EMERGENCY}",
                  CLINIC_PHONE):
        assert words in text, words
    assert "store our conversation" in request["text"] and "/forget" in request["text"]
    buttons = request["reply_markup"]["inline_keyboard"][0]
    assert [(b["text"], b["callback_data"]) for b in buttons] == [("I agree", "consent:yes"), ("No", "consent:no")]
    assert all(c["parse_mode"] == "HTML" for c in send_calls(emu, chat))
    assert {c["command"] for c in emu.commands} == {"start", "forget", "help"}
    assert bot.rasa.messages_from(conv_id(chat)) == []


def test_consent_is_recorded_and_audited_then_messages_reach_rasa(bot, emu, db, chat):
    (thanks,) = give_consent(emu, chat)
    assert "Thank you" in thanks["text"]
    emu.wait_for("editMessageReplyMarkup", chat_id=chat)           # the consent buttons are removed
    contact = patients.lookup(conv_id(chat), db.sessions)
    assert contact.consented and contact.address == str(chat) and contact.channel == "telegram"
    assert "patient_consent_given" in audit_actions(db, conv_id(chat))

    (answer,) = say(emu, chat, "what is an HSG?")
    assert answer["text"] == "You said: what is an HSG?"
    body = bot.rasa.requests[-1]
    assert body == {"sender": conv_id(chat), "message": "what is an HSG?", "metadata": {"channel": "telegram"},
                    "input_channel": "telegram"}
    assert body["sender"].startswith("tg-") and str(chat) not in body["sender"] and len(body["sender"]) <= 64
    assert (chat, "typing") in emu.chat_actions


def test_declining_stores_nothing_and_still_gives_the_numbers(bot, emu, db, chat):
    say(emu, chat, "/start", expect=2)
    before = len(emu.sent_messages(chat))
    emu.push_callback_query(chat, consent_message(emu, chat)["message_id"], "consent:no")
    (declined,) = wait_messages(emu, chat, before + 1)[before:]
    assert "won't store anything" in declined["text"] and CLINIC_PHONE in declined["text"]
    assert patients.lookup(conv_id(chat), db.sessions) is None
    with db.sessions() as s:
        assert s.get(Conversation, conv_id(chat)) is None
    assert audit_actions(db, conv_id(chat)) == ["patient_consent_declined"]


def test_before_consent_nothing_goes_to_rasa_yet_red_flags_get_their_answer(bot, emu, db, chat):
    urgent = say(emu, chat, "I have a fever of 38.7 and chills", expect=3)
    assert urgent[0]["text"].startswith(f"Please call the clinic now on {CLINIC_PHONE}")
    assert "warning sign" in urgent[0]["text"]
    assert "agree" in urgent[-1]["text"]
    assert "consent:yes" in json.dumps(urgent[-1]["reply_markup"])

    emergency = say(emu, chat, "I can't breathe and my lips are swelling", expect=3)
    assert emergency[0]["text"].startswith(f"<b>Call {EMERGENCY} now.</b> What you describe")   # as sent (HTML)

    other = say(emu, chat, "hello there", expect=2)
    assert "need your agreement" in other[0]["text"] and CLINIC_PHONE in other[0]["text"]
    assert "consent:yes" in json.dumps(other[-1]["reply_markup"])

    assert bot.rasa.messages_from(conv_id(chat)) == []          # nothing reached Rasa
    with db.sessions() as s:                                     # nothing stored
        assert s.get(Conversation, conv_id(chat)) is None
        assert s.get(PatientContact, conv_id(chat)) is None


# -- answers ----------------------------------------------------------------------------------------------
def test_answers_are_escaped_html_with_the_emergency_first_sentence_bold(bot, emu, chat):
    give_consent(emu, chat)
    bot.rasa.reply = lambda sender, message: [
        {"recipient_id": sender, "text": f"Call {EMERGENCY} now. What you describe <needs> help & fast."},
        {"recipient_id": sender, "text": f"If you can, tell the clinic afterwards on {CLINIC_PHONE}."},
        {"recipient_id": sender, "custom": {"triage": {"level": "emergency", "escalation_id": None}}}]
    say(emu, chat, "my lips are swelling", expect=2)
    calls = send_calls(emu, chat)[-2:]
    assert all(c["parse_mode"] == "HTML" for c in calls)
    assert calls[0]["text"] == f"<b>Call {EMERGENCY} now.</b> What you describe &lt;needs&gt; help &amp; fast."
    assert calls[1]["text"] == f"If you can, tell the clinic afterwards on {CLINIC_PHONE}."   # plain digits


def test_rasa_buttons_become_a_one_time_keyboard_that_sends_payloads_and_is_removed(bot, emu, chat):
    give_consent(emu, chat)

    def reply(sender, message):
        if message == "pain":
            return [{"recipient_id": sender, "text": "How bad is the pain from 0 to 10?",
                     "buttons": [{"title": str(n), "payload": f"the pain is {n} out of 10"} for n in range(11)]}]
        return [{"recipient_id": sender, "text": f"Noted: {message}"}]
    bot.rasa.reply = reply
    say(emu, chat, "pain")
    markup = send_calls(emu, chat)[-1]["reply_markup"]
    assert markup["one_time_keyboard"] is True
    assert [b["text"] for row in markup["keyboard"] for b in row] == [str(n) for n in range(11)]
    (answer,) = say(emu, chat, "3")                  # the patient taps "3"
    assert bot.rasa.messages_from(conv_id(chat))[-1] == "the pain is 3 out of 10"
    assert answer["text"] == "Noted: the pain is 3 out of 10"
    assert send_calls(emu, chat)[-1]["reply_markup"] == {"remove_keyboard": True}
    say(emu, chat, "3")                              # no keyboard now: sent as typed
    assert bot.rasa.messages_from(conv_id(chat))[-1] == "3"


def test_a_long_answer_is_split_in_order_under_the_limit(bot, emu, chat):
    give_consent(emu, chat)
    paragraphs = [f"Paragraph {i}: " + " ".join(f"Sentence {i}.{j} about aftercare & <care>." for j in range(60))
                  for i in range(4)]
    long_text = "\n\n".join(paragraphs)
    assert len(long_text) > 4096 * 2
    bot.rasa.reply = lambda sender, message: [{"recipient_id": sender, "text": long_text}]
    emu.push_message(chat, "tell me everything")
    emu.wait_until(lambda: emu.sent_texts(chat)[-1].endswith("Sentence 3.59 about aftercare &amp; &lt;care&gt;."),
                   timeout=15, what="the last part")
    parts = [c["text"] for c in send_calls(emu, chat) if "Sentence" in c["text"]]
    assert len(parts) >= 3
    assert all(len(p) <= 4096 for p in parts)
    assert " ".join(plain(parts).split()) == " ".join(long_text.split())     # complete and in order


def test_telegram_rate_limits_are_waited_out(bot, emu, chat):
    give_consent(emu, chat)
    emu.fail_next("sendMessage", 429, retry_after=1)
    started = time.monotonic()
    (answer,) = say(emu, chat, "still there?")
    assert answer["text"] == "You said: still there?" and time.monotonic() - started >= 1
    assert emu.fault_count("sendMessage") == 1


def test_rasa_down_the_patient_still_gets_an_answer_with_the_numbers(bot, emu, db, chat, monkeypatch):
    from bot import conversation
    monkeypatch.setattr(conversation, "staff_reached", lambda: True)     # a clinic with a staff chat
    give_consent(emu, chat)
    bot.rasa.status = 503
    (answer,) = say(emu, chat, "hello?")
    assert CLINIC_PHONE in answer["text"] and EMERGENCY in answer["text"]

    urgent = say(emu, chat, "I have a fever of 38.7 and chills", expect=2)
    assert urgent[0]["text"].startswith(f"Please call the clinic now on {CLINIC_PHONE}")
    assert "alerted the clinic's nurses" in urgent[0]["text"]     # recorded by the gateway
    with db.sessions() as s:
        esc = s.execute(select(Escalation).where(Escalation.conversation_id == conv_id(chat))).scalars().one()
    assert esc.level == "urgent" and esc.contact["channel"] == "telegram" and esc.id in urgent[0]["text"]


def test_rasa_unreachable_the_patient_still_gets_the_numbers(db, chat):
    with TelegramEmulator() as emu, Harness(emu, db.sessions, rasa_url=f"http://127.0.0.1:{free_port()}") as harness:
        give_consent(emu, chat)
        before = len(emu.sent_messages(chat))
        emu.push_message(chat, "I feel tired")
        emu.wait_until(lambda: any(CLINIC_PHONE in m["text"] for m in emu.sent_messages(chat)[before:]),
                       timeout=10, what="the clinic's number")
        assert "common after-effect" in emu.sent_messages(chat)[before]["text"]     # the engine's answer
        assert harness.rasa.requests == []


def test_one_chat_waits_for_its_answer_in_order_without_holding_up_others(bot, emu, chat):
    other = chat + 500_000
    give_consent(emu, chat)
    give_consent(emu, other)
    bot.rasa.delay = lambda message: 1.5 if message == "slow" else 0.0
    before = len(emu.sent_messages(chat))
    emu.push_message(chat, "slow")
    emu.push_message(chat, "fast")
    started = time.monotonic()
    (quick,) = say(emu, other, "other patient")
    assert time.monotonic() - started < 1.2 and quick["text"] == "You said: other patient"
    answers = [m["text"] for m in wait_messages(emu, chat, before + 2)[before:]]
    assert answers == ["You said: slow", "You said: fast"]


# -- what is not text -----------------------------------------------------------------------------------
def _message(chat, **content):
    return {"message": {"chat": {"id": chat, "type": "private", "first_name": "P"},
                        "from": {"id": chat, "is_bot": False, "first_name": "P"}, **content}}


FILE = {"file_id": "F1", "file_unique_id": "U1"}
NOT_TEXT = {
    "photo": ({"photo": [dict(FILE, width=90, height=90)]}, "only read text messages"),
    "voice": ({"voice": dict(FILE, duration=3)}, "can't listen to voice"),
    "sticker": ({"sticker": dict(FILE, type="regular", width=512, height=512, is_animated=False,
                                 is_video=False)}, "only read text messages"),
    "document": ({"document": dict(FILE, file_name="scan.pdf")}, "only read text messages"),
    "video": ({"video": dict(FILE, width=1, height=1, duration=1)}, "can't listen to voice or video"),
    "location": ({"location": {"latitude": 51.5, "longitude": -0.1}}, f"call {EMERGENCY}"),
}


def test_each_kind_of_non_text_message_gets_its_answer_and_the_bot_keeps_working(bot, emu, chat):
    for kind, (content, expected) in NOT_TEXT.items():
        before = len(emu.sent_messages(chat))
        emu.push_update(_message(chat, **content))
        (answer,) = wait_messages(emu, chat, before + 1)[before:]
        assert expected in answer["text"], kind
        if kind != "location":
            assert CLINIC_PHONE in answer["text"] and EMERGENCY in answer["text"], kind
    # an edit of an earlier message
    before = len(emu.sent_messages(chat))
    sent = emu.push_message(chat, "/help")
    wait_messages(emu, chat, before + 1)
    before += 1
    emu.push_update({"edited_message": dict(sent["message"], text="/help me")})
    (answer,) = wait_messages(emu, chat, before + 1)[before:]
    assert "send the change as a new message" in answer["text"]
    # still working
    (answer,) = say(emu, chat, "/help")
    assert "/forget" in answer["text"]


def test_a_photo_with_a_caption_is_answered_and_the_caption_read(bot, emu, chat):
    before = len(emu.sent_messages(chat))
    emu.push_update(_message(chat, photo=[dict(FILE, width=9, height=9)], caption="I have chills and a fever of 38.5"))
    answers = [m["text"] for m in wait_messages(emu, chat, before + 4)[before:]]
    assert "only read text messages" in answers[0] and "I read the text" in answers[1]
    assert answers[2].startswith(f"Please call the clinic now on {CLINIC_PHONE}")      # before consent: local


def test_group_and_channel_chats_get_told_private_only(bot, emu, chat):
    group = -4_000_000 - chat
    emu.push_message(group, "I have a fever", chat_type="group", user_id=chat)
    (answer,) = wait_messages(emu, group, 1)
    assert "only talk in private chats" in answer["text"] and EMERGENCY in answer["text"]
    channel = -1_002_000_000_000 - chat
    emu.push_update({"channel_post": {"chat": {"id": channel, "type": "channel", "title": "News"}, "text": "hi"}})
    (answer,) = wait_messages(emu, channel, 1)
    assert "only talk in private chats" in answer["text"]
    assert bot.rasa.messages_from(conv_id(group)) == [] and bot.rasa.messages_from(conv_id(channel)) == []
    (answer,) = say(emu, chat, "/help")                # and the bot keeps working
    assert "/forget" in answer["text"]


def test_the_staff_chat_is_left_alone(bot, emu):
    emu.push_message(STAFF_CHAT, "morning all", chat_type="supergroup", user_id=4242)
    time.sleep(0.8)
    assert emu.sent_messages(STAFF_CHAT) == []


def test_an_unknown_button_is_answered_not_crashed(bot, emu, chat):
    say(emu, chat, "/start", expect=2)
    emu.push_callback_query(chat, consent_message(emu, chat)["message_id"], "something:else")
    emu.wait_until(lambda: any("no longer valid" in (a.get("text") or "") for a in emu.callback_answers),
                   timeout=10, what="the callback answer")


def test_a_handler_error_is_logged_without_the_text_and_the_patient_still_answered(bot, emu, chat, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database on fire")
    monkeypatch.setattr(patients, "has_consent", broken)
    with caplog.at_level("ERROR"):
        (answer,) = say(emu, chat, "/start secret words")
    assert "went wrong" in answer["text"] and CLINIC_PHONE in answer["text"]
    assert "error handling update" in caplog.text and "RuntimeError" in caplog.text
    assert "secret words" not in caplog.text


# -- /forget ------------------------------------------------------------------------------------------------
def test_forget_deletes_contact_consent_updates_and_rasa_tracker(bot, emu, db, chat):
    give_consent(emu, chat)
    say(emu, chat, "I have cramps")
    cid = conv_id(chat)
    assert bot.rasa.events[cid]
    # webhook updates stored for this chat and for someone else's
    mine = {"update_id": 9_000_000 + chat, "message": {"message_id": 1, "date": 0, "text": "x",
                                                       "chat": {"id": chat, "type": "private"}}}
    theirs = {"update_id": 9_500_000 + chat, "message": {"message_id": 1, "date": 0, "text": "y",
                                                         "chat": {"id": chat + 1, "type": "private"}}}
    assert inbox.store_update(mine["update_id"], mine, db.sessions)
    assert inbox.store_update(theirs["update_id"], theirs, db.sessions)

    answers = say(emu, chat, "/forget", expect=3)
    text = "\n".join(a["text"] for a in answers)
    assert "deleted our conversation" in text
    assert "the clinic keeps that record" in text and CLINIC_PHONE in text
    assert (cid, []) in bot.rasa.tracker_puts and bot.rasa.events[cid] == []
    assert patients.lookup(cid, db.sessions) is None and not patients.has_consent(cid, db.sessions)
    assert inbox.stored_update_ids(chat, db.sessions) == []
    assert inbox.stored_update_ids(chat + 1, db.sessions) == [theirs["update_id"]]
    with db.sessions() as s:
        assert s.get(Conversation, cid).forgotten_at is not None
        forgotten = s.execute(select(AuditEntry).where(AuditEntry.action == "patient_data_forgotten",
                                                       AuditEntry.actor_id == cid)).scalars().one()
    assert forgotten.detail["rasa_tracker_cleared"] is True and forgotten.detail["updates_deleted"] == 1

    asked = len(bot.rasa.requests)                 # afterwards: consent first again, nothing to Rasa
    again = say(emu, chat, "hello", expect=2)
    assert "need your agreement" in again[0]["text"] and len(bot.rasa.requests) == asked


def test_forget_says_so_when_rasa_keeps_the_conversation(bot, emu, db, chat):
    give_consent(emu, chat)
    say(emu, chat, "I have cramps")
    bot.rasa.append_only = True                   # as Rasa 3.6's SQL tracker store behaves
    answers = say(emu, chat, "/forget", expect=3)
    assert "could not delete the conversation itself" in answers[0]["text"]
    assert patients.lookup(conv_id(chat), db.sessions) is None
