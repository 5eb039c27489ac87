"""Fuzzing the patients' entry points (hypothesis): the web app's REST and socket.io handlers through
the gateway, and the Telegram gateway's parts. Whatever arrives (huge, binary, right-to-left, emoji,
control characters, malformed JSON, payload-looking text): no crash, no 5xx, never an empty answer,
and a message that contains a warning sign is answered at its level with the clinic's number.

`make test` runs a short derandomised pass (HSG_FUZZ_EXAMPLES, default 150 per target);
`make fuzz` runs 10,000 messages in all.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels.telegram import format as fmt
from bot.channels.telegram.gateway import answers_from_rasa
from bot.triage import RANK
from bot.web.chat import to_events

EXAMPLES = int(os.environ.get("HSG_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 500,
                suppress_health_check=list(HealthCheck))

# warning signs, each with the least level it must get (plain, unambiguous reports)
RED_FLAGS = [("I fainted at home after the test", "urgent"), ("my lips and tongue are swelling", "emergency"),
             ("I have a fever of 39.2", "urgent"), ("I keep vomiting", "urgent"),
             ("I can't breathe properly", "emergency"), ("I'm soaking a pad every hour", "urgent")]
# around a warning sign: only characters that cannot negate it or make it a question
NOISE = st.text(alphabet=st.sampled_from(list("🙂😭👍🏽💔 .,!\n\t") + ["\u200f", "\u202e", "\u05d0", "\u0627",
                                                                     "\u4e2d", "\u00e9", "\x07", "\u200b"]),
                max_size=40)
WEIRD = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")),
    st.text(alphabet=st.characters(min_codepoint=0x0590, max_codepoint=0x06FF), max_size=200),   # RTL
    st.text(alphabet=st.characters(whitelist_categories=["Cc", "Cf", "Zs", "So"]), max_size=200),
    st.sampled_from(['/greet{"x": 1}', "/EXTERNAL_unacknowledged", '{"sender": 1}', "<script>alert(1)</script>",
                     "%s%s%n", "\x00\x00", "’" * 50, "a" * 5000, "🙂" * 3000]),
)


@pytest.fixture(autouse=True, scope="module")
def _fast_fake(servers):
    servers.fake.delay = 0
    yield
    servers.fake.delay = 0.4


def _post(servers, raw: bytes):
    req = urllib.request.Request(f"http://127.0.0.1:{servers.web_port}/webhooks/rest/webhook", data=raw,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _level(answers):
    for a in answers:
        if isinstance(a, dict) and (a.get("custom") or {}).get("triage"):
            return a["custom"]["triage"]["level"]
    return None


@FUZZ
@given(message=WEIRD, sender=st.one_of(st.text(max_size=100), st.integers(), st.none()))
def test_rest_never_fails_and_always_answers(servers, message, sender):
    status, body = _post(servers, json.dumps({"sender": sender, "message": message}).encode())
    assert status < 500 and status in (200, 413, 429), status
    answers = json.loads(body)
    assert answers and any(a.get("text") for a in answers)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(str.encode)))
def test_rest_takes_malformed_bodies_without_a_5xx(servers, raw):
    status, _ = _post(servers, raw)
    assert status < 500, status


@FUZZ
@given(before=NOISE, sign=st.sampled_from(RED_FLAGS), after=NOISE, down=st.booleans())
def test_a_warning_sign_inside_noise_is_answered_at_its_level(servers, before, sign, after, down):
    text, least = sign
    servers.fake.down = down
    try:
        reply = servers.call(servers.chat.gateway.handle(
            _inbound("web", f"fuzz-{abs(hash(before + after)) % 10**9}", before + text + after)))
    finally:
        servers.fake.down = False
    assert RANK[reply.level] >= RANK[least], (before + text + after, reply.level)
    events = to_events(reply.messages)
    words = " ".join(e.get("text", "") for e in events)
    assert servers.clinic.phone in words or servers.clinic.emergency_number in words


@FUZZ
@given(message=WEIRD)
def test_the_socket_handler_answers_whatever_arrives(servers, message):
    reply = servers.call(servers.chat.gateway.handle(_inbound("web", "fuzz-socket", message)))
    events = to_events(reply.messages)
    assert events and any(e.get("text") for e in events)


@FUZZ
@given(answers=st.lists(st.dictionaries(st.sampled_from(["text", "buttons", "custom", "image", "quick_replies"]),
                                        st.one_of(st.text(max_size=50), st.none(), st.integers(),
                                                  st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=5)),
                                                           max_size=3),
                                                  st.fixed_dictionaries({"triage": st.fixed_dictionaries(
                                                      {"level": st.sampled_from(list(RANK))})})),
                                        max_size=4), max_size=5),
       text=WEIRD)
def test_telegram_formatting_takes_anything(answers, text):
    outs = answers_from_rasa(answers)
    for out in outs:
        for chunk in fmt.to_html(out.text, emphasis=out.emphasis):
            assert 0 < len(chunk) <= 4096
    chunks = fmt.to_html(text or " ")
    assert all(len(c) <= 4096 for c in chunks)


def _inbound(channel, sender, text):
    from bot.channels.core import Inbound
    return Inbound(channel, sender, text, "")

