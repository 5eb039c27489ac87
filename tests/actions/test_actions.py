"""Custom actions, run with rasa_sdk's CollectingDispatcher and hand-made trackers."""
import asyncio
import re

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.session import ActionSessionStart
from actions.triage import ActionFallback, ActionTriage
from bot import settings
from support.trackers import apply, make_tracker

CLINIC = settings.get().clinic


def run(action, tracker):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return dispatcher.messages, events


def texts(messages):
    return [m.get("text") or "" for m in messages]


def triage_payload(messages):
    found = [m["custom"]["triage"] for m in messages if (m.get("custom") or {}).get("triage")]
    assert len(found) == 1, messages
    return found[0]


def test_emergency_answer_puts_the_number_first():
    messages, _ = run(ActionTriage(), make_tracker("my throat is closing up"))
    assert texts(messages)[0].startswith(f"Call {CLINIC.emergency_number} now")
    assert triage_payload(messages)["level"] == "emergency"


def test_urgent_answer_gives_the_clinic_numbers_and_asks_for_a_reading():
    messages, events = run(ActionTriage(), make_tracker("I feel really hot and shivery"))
    first = texts(messages)[0]
    assert CLINIC.phone in first and CLINIC.out_of_hours_phone in first
    assert triage_payload(messages)["level"] == "urgent"
    assert apply(events)["expecting"] == "temperature"
    assert "temperature" in texts(messages)[-1].lower()


def test_self_care_gives_advice_safety_net_and_one_question():
    messages, events = run(ActionTriage(), make_tracker("I'm spotting a little"))
    body = " ".join(texts(messages))
    assert "common after-effect" in body
    assert "pads rather than tampons" in body            # the bleeding advice
    assert "Call the clinic now" in body                 # the safety net
    slots = apply(events)
    assert slots["expecting"] == "pads_per_hour" and slots["asked"] == ["pads_per_hour"]
    assert messages[-1]["buttons"], "the pads question offers quick answers"


def test_the_answer_to_a_follow_up_is_read_in_context():
    _, events = run(ActionTriage(), make_tracker("I'm bleeding"))
    slots = apply(events)
    messages, events = run(ActionTriage(), make_tracker("3", intent="inform", slots=slots))
    assert triage_payload(messages)["level"] == "urgent"
    assert "3 pads an hour" in texts(messages)[0]


def test_i_dont_know_skips_the_question_without_repeating_it():
    _, events = run(ActionTriage(), make_tracker("cramping"))
    slots = apply(events)
    assert slots["expecting"] == "pain_score"
    messages, events = run(ActionTriage(), make_tracker("no idea", intent="dont_know", slots=slots))
    slots2 = apply(events, slots)
    assert "don't need to know" in texts(messages)[0]
    assert slots2["expecting"] != "pain_score" and slots2["asked"].count("pain_score") == 1


def test_a_red_flag_while_a_question_is_pending_is_answered_at_once():
    _, events = run(ActionTriage(), make_tracker("some cramps"))
    slots = apply(events)
    messages, _ = run(ActionTriage(), make_tracker("forget that, I just passed out", slots=slots))
    assert triage_payload(messages)["level"] == "emergency"


def test_the_day_of_the_test_is_remembered_for_later_messages():
    _, events = run(ActionTriage(), make_tracker("had the hsg 4 days ago and I'm spotting"))
    slots = apply(events)
    assert slots["days_since_procedure"] == 4
    messages, _ = run(ActionTriage(), make_tracker("still a bit of discharge", slots=slots))
    assert triage_payload(messages)["level"] == "routine"


def test_negated_symptoms_get_reassurance_and_the_safety_net():
    messages, _ = run(ActionTriage(), make_tracker("no fever and no chills"))
    assert triage_payload(messages)["level"] == "info"
    assert "don't have the warning signs" in texts(messages)[0]
    assert "Call the clinic now" in texts(messages)[-1]


def test_no_symptom_recognised_is_never_a_silent_or_generic_answer():
    messages, _ = run(ActionTriage(), make_tracker("I feel blergh"))
    body = " ".join(texts(messages))
    assert "describe it in other words" in body and CLINIC.emergency_number in body


def test_engine_failure_still_gives_the_numbers(monkeypatch):
    from bot import conversation

    def boom(*a, **k):
        raise RuntimeError("engine down")
    monkeypatch.setattr(conversation, "assess", boom)
    messages, events = run(ActionTriage(), make_tracker("I have a fever"))
    assert events == []
    assert CLINIC.phone in texts(messages)[0] and CLINIC.emergency_number in texts(messages)[0]


def test_fallback_says_so_and_gives_the_safety_net():
    messages, events = run(ActionFallback(), make_tracker("asdfgh", intent="nlu_fallback"))
    assert events == []
    assert "didn't understand" in texts(messages)[0]
    assert CLINIC.emergency_number in texts(messages)[1]


def test_session_start_loads_the_clinic_and_carries_memory_over():
    tracker = make_tracker("", slots={"findings": [{"concept": "fever"}], "days_since_procedure": 2})
    _, events = run(ActionSessionStart(), tracker)
    assert events[0]["event"] == "session_started" and events[-1]["name"] == "action_listen"
    slots = apply(events)
    assert slots["clinic_phone"] == CLINIC.phone and slots["emergency_number"] == CLINIC.emergency_number
    assert slots["findings"] == [{"concept": "fever"}] and slots["days_since_procedure"] == 2


DIAGNOSIS = re.compile(r"(?<!if )(?<!whether )\byou (have|'ve got|are having) (an? )?(infection|ectopic|allerg|pelvic|sepsis|"
                       r"anaphyla|haemorrhage|hemorrhage)|\bthis is (an? )?(infection|ectopic)|\bdiagnos", re.I)


@pytest.mark.parametrize("text", [
    "I've got a fever of 39 and the discharge smells", "positive pregnancy test and pain on my left side",
    "hives all over after the dye", "I'm bleeding through a pad every half hour and feel dizzy",
    "cramps 3/10", "burning when I wee", "my lips are tingling and swollen",
])
def test_no_answer_states_a_diagnosis_and_red_flags_give_the_number(text):
    messages, _ = run(ActionTriage(), make_tracker(text))
    body = " ".join(texts(messages))
    assert not DIAGNOSIS.search(body), body
    level = triage_payload(messages)["level"]
    if level == "emergency":
        assert texts(messages)[0].startswith(f"Call {CLINIC.emergency_number}")
    if level == "urgent":
        assert CLINIC.phone in texts(messages)[0]


# -- the conversation items of issue 9 ---------------------------------------------------------
def test_a_denied_other_symptom_is_not_an_answer_to_the_painkiller_question():
    _, events = run(ActionTriage(), make_tracker("I have cramps"))
    slots = apply(events)
    assert slots["expecting"] == "pain_score"
    slots["expecting"] = "painkillers_help"
    messages, _ = run(ActionTriage(), make_tracker("no fever", slots=slots))
    assert triage_payload(messages)["level"] != "urgent"
    messages, _ = run(ActionTriage(), make_tracker("no, they don't help with the pain", slots=slots))
    assert triage_payload(messages)["level"] == "urgent"


def test_a_general_question_about_a_warning_sign_is_answered_with_the_facts():
    messages, events = run(ActionTriage(), make_tracker("is it bad to get a fever after this?"))
    assert triage_payload(messages)["level"] == "info"
    body = " ".join(texts(messages))
    assert "38" in body and CLINIC.phone in body
    assert "not sure I understood" not in body


def test_an_unlisted_complaint_is_routine_with_a_one_tap_checklist():
    messages, events = run(ActionTriage(), make_tracker("my mood has been really low since the test"))
    assert triage_payload(messages)["level"] == "routine"
    slots = apply(events)
    assert slots["expecting"] == "warning_signs"
    payloads = [b["payload"] for b in messages[-1]["buttons"]]
    assert "none of these" in payloads and len(payloads) >= 6
    # each tap is triaged like text
    messages, _ = run(ActionTriage(), make_tracker("I feel faint", slots=slots))
    assert triage_payload(messages)["level"] == "urgent"
    messages, _ = run(ActionTriage(), make_tracker("none of these", intent="deny", slots=slots))
    assert triage_payload(messages)["level"] == "info"
    assert "don't have the warning signs" in " ".join(texts(messages))


def test_telling_the_day_of_the_test_gets_a_greeting_and_how_are_you():
    from actions.triage import ActionProcedureDay

    messages, events = run(ActionProcedureDay(), make_tracker("hi, I had my HSG yesterday", intent="procedure_day"))
    body = " ".join(texts(messages))
    assert body.startswith("Hello") and "yesterday" in body and "How are you feeling?" in body
    assert apply(events)["days_since_procedure"] == 1


def test_the_answer_says_the_nurses_were_alerted_only_when_a_target_reaches_them(monkeypatch):
    """Dashboard only: the escalation is on the nurses' list, but nobody is paged, so the patient
    is not told that the nurses were alerted. With an email (or Telegram) target, she is."""
    for var in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_STAFF_CHAT_ID", "SMTP_HOST", "ALERT_EMAIL_FROM", "ALERT_EMAIL_TO"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(settings, "get", settings.load)
    messages, _ = run(ActionTriage(), make_tracker("I've been vomiting all day and I can't keep water down"))
    first, ref = texts(messages)[0], triage_payload(messages)["escalation_id"]
    assert ref and ref in first and "may not see it straight away" in first and "alerted" not in first
    assert first.startswith(f"Please call the clinic now on {CLINIC.phone}")
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ALERT_EMAIL_FROM", "bot@clinic.test")
    monkeypatch.setenv("ALERT_EMAIL_TO", "nurses@clinic.test")
    messages, _ = run(ActionTriage(), make_tracker("I've been vomiting all day and I can't keep water down"))
    assert "I have also alerted the clinic's nurses" in texts(messages)[0]


@pytest.mark.parametrize("text", [
    "the leaflet said to ring 0800 123 4567 but I have a fever of 38.9 and chills",
    "my friend says call 07700 900123, I fainted and I'm bleeding a lot",
    "I have cramps 4/10, is 0207 946 0000 your number?",
])
def test_the_only_phone_numbers_in_answers_are_the_clinics(text):
    """A number the patient typed is never repeated as one to call: every number in an answer is
    clinic.yml's (HAZ-08 in docs/safety/hazard-log.yml)."""
    messages, _ = run(ActionTriage(), make_tracker(text))
    allowed = {re.sub(r"\D", "", n) for n in (CLINIC.phone, CLINIC.out_of_hours_phone, CLINIC.emergency_number)}
    for said in texts(messages):
        for number in re.findall(r"\+?\d[\d ]{5,}\d", said):
            assert re.sub(r"\D", "", number) in allowed, (number, said)
