"""Bad input gives a decision or a clear error, never a crash or a hang."""
import time

import pytest

from bot.triage.text import normalise

BAD = {
    "empty": "",
    "whitespace": " \t\n  \n",
    "long": "I have mild cramps. " * 1000,               # 20,000 characters
    "long_no_spaces": "a" * 20_000,
    "over_limit": "fine " * 10_000 + "I fainted",
    "emoji": "😭😭😭🤒",
    "other_language": "tengo fiebre y escalofríos desde ayer",
    "control_characters": "\x00\x01\x07\x1b[31mfever\x7f\u200b\u202e",
    "surrogates_and_rtl": "\u202ecramps\u202c \ufeff",
    "only_punctuation": "?!?!...,,,;;;",
    "numbers": "38 38.5 100 7/10 2 3 4",
    "repeated_negations": "no " * 5000,
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_returns_a_decision_quickly(engine, name):
    start = time.perf_counter()
    decision = engine.triage(BAD[name])
    assert time.perf_counter() - start < 5
    assert decision.level in ("info", "self_care", "routine", "urgent", "emergency")


def test_a_long_message_still_finds_its_symptoms(engine):
    assert engine.triage(BAD["long"]).level == "self_care"


def test_empty_is_info_with_a_note(engine):
    d = engine.triage("   ")
    assert d.level == "info" and "empty message" in d.notes


def test_over_the_limit_is_truncated_and_says_so(engine):
    d = engine.triage(BAD["over_limit"])
    assert any("truncated" in n for n in d.notes)


def test_control_characters_do_not_hide_a_symptom(engine):
    assert engine.triage(BAD["control_characters"]).level == "urgent"


def test_spans_point_into_the_original_text(engine):
    text = "well\x00 I\u2019m vomiting"
    f = engine.triage(text).findings[0]
    assert text[f.start:f.end] == "vomiting"


def test_another_language_is_noted(engine):
    d = engine.triage(BAD["other_language"])
    assert "the message may not be in English" in d.notes


@pytest.mark.parametrize("value", [None, 42, b"fever", ["fever"]])
def test_non_text_is_a_clear_error(engine, value):
    with pytest.raises(TypeError, match="must be text"):
        engine.triage(value)


# -- text that a typist or an attacker can slip past ------------------------------------------
@pytest.mark.parametrize("text", [
    "I f\u200bainted",                      # zero-width space inside the word
    "I f\u00adainted",                      # soft hyphen
    "I fa\u200d\u2060inted",                # zero-width joiner and word joiner
    "I \uff46\uff41\uff49\uff4e\uff54\uff45\uff44",   # full-width letters
    "I F\uff21INTED",                       # mixed full-width capitals
    "I f\u0430inted",                       # Cyrillic a
    "I f\u0336a\u0336i\u0336n\u0336t\u0336e\u0336d\u0336",   # combining strike-through
    "I fa\u0301inted",                      # combining accent
    "I \u202efainted\u202c",               # right-to-left override around the word
])
def test_hidden_and_lookalike_characters_do_not_hide_a_symptom(engine, text):
    d = engine.triage(text)
    assert d.level == "emergency", d.reasons
    f = next(f for f in d.findings if f.concept == "fainting")
    assert normalise(text[f.start:f.end]).text.strip().lower() == "fainted"


@pytest.mark.parametrize("text", ["ﬁne, no fever", "\u2460 no fever"])
def test_compatibility_forms_keep_negation(engine, text):
    assert engine.triage(text).level == "info"


def test_spans_map_back_through_deleted_and_expanded_characters(engine):
    text = "\u200b\u200bwell \uff49'm v\u00adomiting"
    f = next(f for f in engine.triage(text).findings if f.concept == "vomiting")
    assert text[f.start:f.end] == "v\u00adomiting"
