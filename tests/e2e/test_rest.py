"""The trained bot through REST: same level as the CLI, red flags in any state, safe answers."""
import json
import re
import subprocess
import sys

import pytest

from bot import settings

pytestmark = pytest.mark.rasa
RANK = {"info": 0, "self_care": 1, "routine": 2, "urgent": 3, "emergency": 4}
CLINIC = settings.get().clinic
FALLBACK_START = "Sorry, I didn't understand that"


@pytest.fixture(scope="module")
def cli_levels(dev_vignettes, tmp_path_factory):
    src = tmp_path_factory.mktemp("cli") / "in.jsonl"
    src.write_text("\n".join(json.dumps({"id": v["id"], "text": v["text"]}) for v in dev_vignettes))
    out = subprocess.run([sys.executable, "-m", "bot", "triage", "--jsonl", str(src)], capture_output=True,
                         text=True, check=True)
    return {row["id"]: row["level"] for row in map(json.loads, out.stdout.splitlines())}


def test_first_message_level_equals_the_cli(live_bot, dev_vignettes, cli_levels):
    mismatches = []
    for v in dev_vignettes:
        responses = live_bot.send(live_bot.new_sender(), v["text"])
        payload = live_bot.triage(responses)
        level = payload["level"] if payload else "info"
        if level != cli_levels[v["id"]]:
            mismatches.append(f"{v['id']}: REST {level} vs CLI {cli_levels[v['id']]}: {v['text']}")
        assert responses, f"no answer to {v['text']!r}"
    assert not mismatches, "\n".join(mismatches)


OPENERS = {
    "mid follow-up": ["I'm bleeding a bit"],                       # the bot asks about pads
    "after a question": ["what is an HSG?"],
    "after small talk": ["hello", "thanks"],
    "after self-care advice": ["some cramps", "about a 3"],
    "after an answer skipped": ["got cramps", "I don't know"],
}


@pytest.mark.parametrize("state", sorted(OPENERS))
def test_red_flags_later_in_a_conversation_still_get_at_least_urgent(live_bot, dev_vignettes, state):
    red = [v for v in dev_vignettes if min(RANK[a] for a in v["accept"]) >= RANK["urgent"]]
    misses = []
    for v in red:
        sender = live_bot.new_sender()
        for opener in OPENERS[state]:
            live_bot.send(sender, opener)
        payload = live_bot.triage(live_bot.send(sender, v["text"]))
        if not payload or RANK[payload["level"]] < RANK["urgent"]:
            misses.append(f"{v['id']}: {payload and payload['level']}: {v['text']}")
    assert not misses, f"{state}:\n" + "\n".join(misses)


def test_symptom_answers_are_never_the_generic_fallback(live_bot, dev_vignettes):
    for v in dev_vignettes:
        if v["level"] == "info":
            continue
        responses = live_bot.send(live_bot.new_sender(), v["text"])
        assert not any((r.get("text") or "").startswith(FALLBACK_START) for r in responses), v["text"]
        assert live_bot.triage(responses) is not None, v["text"]


DIAGNOSIS = re.compile(r"(?<!if )(?<!whether )\byou (have|'ve got|are having) (an? )?(infection|ectopic|allerg|sepsis|anaphyla)|"
                       r"\bthis is (an? )?(infection|ectopic)|\bdiagnos", re.I)


def test_no_diagnosis_and_the_number_to_call_in_every_red_flag_answer(live_bot, dev_vignettes):
    for v in dev_vignettes:
        responses = live_bot.send(live_bot.new_sender(), v["text"])
        body = " ".join(r.get("text") or "" for r in responses)
        assert not DIAGNOSIS.search(body), body
        payload = live_bot.triage(responses)
        if payload and payload["level"] == "emergency":
            assert responses[0]["text"].startswith(f"Call {CLINIC.emergency_number} now")
        if payload and payload["level"] == "urgent":
            assert CLINIC.phone in body and CLINIC.out_of_hours_phone in body


def test_faq_and_small_talk_answers(live_bot):
    sender = live_bot.new_sender()
    greet = live_bot.send(sender, "hello")
    assert CLINIC.name in greet[0]["text"]
    faq = live_bot.send(sender, "can I drive home after the test?")
    assert faq and live_bot.triage(faq) is None
    assert re.search(r"driv", faq[0]["text"], re.I)


def test_no_message_text_in_the_servers_info_logs(live_bot):
    marker = "zebracrossing"            # a word that can only come from this test's message
    live_bot.send(live_bot.new_sender(), f"I'm vomiting and my {marker} hurts")
    for log in ("rasa.log", "actions.log"):
        text = (live_bot.tmp / log).read_text(errors="replace")
        assert marker not in text, f"patient text found in {log}"
