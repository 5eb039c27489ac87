"""The web app's chat through the patient gateway: sessions bound to sockets, origins, caps, limits,
commands refused, and the safety answer when Rasa fails. Against the real web app and a fake Rasa
REST channel on loopback."""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
import socketio

from .conftest import wait_for


def post(servers, body, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{servers.web_port}/webhooks/rest/webhook", data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def texts(answers):
    return " ".join(a.get("text", "") for a in answers if isinstance(a, dict))


def level_of(answers):
    for a in answers:
        if (a.get("custom") or {}).get("triage"):
            return a["custom"]["triage"]["level"]
    return None


class Client:
    """A socket.io client on the servers' loop, recording what it receives."""

    def __init__(self, servers, origin=None):
        self.servers, self.origin = servers, origin or f"http://127.0.0.1:{servers.web_port}"
        self.sio = socketio.AsyncClient(reconnection=False)
        self.confirmed, self.received = [], []
        self.sio.on("session_confirm", lambda token: self.confirmed.append(token))
        self.sio.on("bot_uttered", lambda event: self.received.append(event))

    def connect(self):
        self.servers.call(self.sio.connect(f"http://127.0.0.1:{self.servers.web_port}",
                                           headers={"Origin": self.origin}, transports=["polling"],
                                           socketio_path="/socket.io", wait_timeout=5))
        return self

    def emit(self, event, data):
        self.servers.call(self.sio.emit(event, data))

    def close(self):
        try:        # a polling client's disconnect can wait for its open long-poll; it is gone anyway
            self.servers.call(asyncio.wait_for(self.sio.disconnect(), 3))
        except Exception:
            pass


def test_a_foreign_origin_cannot_open_the_chat(servers):
    client = Client(servers, origin="http://evil.example")
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect()


def test_sessions_are_issued_by_the_server_and_bound_to_their_socket(servers):
    alice = Client(servers).connect()
    try:
        alice.emit("session_request", {"session_id": "made-up-by-the-client"})
        wait_for(lambda: alice.confirmed, what="alice's session")
        token = alice.confirmed[0]
        assert token != "made-up-by-the-client" and "." in token
        conv = "web-" + token.split(".")[0]

        # a second socket naming alice's conversation, or her live token, gets a session of its own
        for forged in (conv, token.split(".")[0], token):
            mallory = Client(servers).connect()
            try:
                mallory.emit("session_request", {"session_id": forged})
                wait_for(lambda: mallory.confirmed, what="mallory's session")
                assert mallory.confirmed[0] != token
                mallory.emit("user_uttered", {"message": "hello from mallory", "session_id": token})
                wait_for(lambda: mallory.received, what="mallory's answer")
            finally:
                mallory.close()
        assert all(sender != conv for sender, m in servers.fake.messages if m == "hello from mallory")

        alice.emit("user_uttered", {"message": "I have a temperature of 38.4", "session_id": "ignored"})
        wait_for(lambda: any("custom" in e for e in alice.received), what="alice's answer")
        assert servers.fake.messages[-1] == (conv, "I have a temperature of 38.4")
        # a message before any session_request is not answered and not sent on
        late = Client(servers).connect()
        late.emit("user_uttered", {"message": "no session yet"})
        time.sleep(1)
        assert late.received == [] and all(m != "no session yet" for _, m in servers.fake.messages)
        late.close()
    finally:
        alice.close()


def test_rest_on_the_web_port_speaks_rasas_format(servers):
    status, answers = post(servers, {"sender": "integration-1", "message": "I have a temperature of 38.4"})
    assert status == 200 and level_of(answers) == "urgent"
    assert servers.fake.messages[-1] == ("rest-integration-1", "I have a temperature of 38.4")
    # an over-long or odd sender is bounded and opaque; a Telegram conversation cannot be named
    post(servers, {"sender": "tg-" + "x" * 200, "message": "hello"})
    sender = servers.fake.messages[-1][0]
    assert sender.startswith("rest-h") and len(sender) <= 64
    assert post(servers, None, raw=b"{not json")[0] == 400


def test_commands_from_patients_are_read_as_words(servers):
    _, answers = post(servers, {"sender": "slash", "message": '/greet{"note": "I fainted and I am bleeding heavily"}'})
    assert servers.fake.messages[-1][1].startswith('greet{"note"')
    post(servers, {"sender": "slash", "message": "/EXTERNAL_unacknowledged"})
    assert servers.fake.messages[-1][1] == "EXTERNAL_unacknowledged"


def test_too_long_is_refused_clearly_but_a_red_flag_in_it_is_answered(servers, clinic_phone):
    status, answers = post(servers, {"sender": "long", "message": "I fainted and I am bleeding heavily. " + "x" * 5000})
    assert status == 413
    assert "too long" in texts(answers) and clinic_phone in texts(answers)
    assert level_of(answers) == "emergency"


def test_a_flood_is_throttled_while_another_patient_is_answered(servers, clinic_phone):
    """100 messages a second from one sender for 3 s; another patient's red flag sent in the middle
    of the flood is answered within 3 s."""
    import subprocess
    import sys

    # the flood comes from another process, as it would (a client in this process would share the
    # server's interpreter lock and measure itself)
    flooder = f"""
import json, sys, time, urllib.request, urllib.error
from concurrent.futures import ThreadPoolExecutor
def post(i):
    req = urllib.request.Request("http://127.0.0.1:{servers.web_port}/webhooks/rest/webhook",
        data=json.dumps({{"sender": "flood", "message": "hello %d" % i}}).encode(),
        headers={{"Content-Type": "application/json"}})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
t = time.monotonic()
futures = []
with ThreadPoolExecutor(50) as pool:
    for i in range(300):                     # 100 a second for 3 seconds
        time.sleep(max(0.0, t + i / 100 - time.monotonic()))
        futures.append(pool.submit(post, i))
    results = [f.result() for f in futures]
print(json.dumps({{"seconds": time.monotonic() - t, "results": results}}))
"""
    servers.fake.delay = 0.0
    post(servers, {"sender": "warm-up", "message": "hello"})       # the engine is loaded
    try:
        proc = subprocess.Popen([sys.executable, "-c", flooder], stdout=subprocess.PIPE, text=True)
        wait_for(lambda: any(s == "rest-flood" for s, _ in servers.fake.messages), timeout=90, what="the flood")
        time.sleep(1.0)                                             # in the middle of the flood
        t0 = time.monotonic()
        status, answers = post(servers, {"sender": "someone-else", "message": "I have a temperature of 38.4"})
        other_took = time.monotonic() - t0
        out = json.loads(proc.communicate(timeout=120)[0])
    finally:
        servers.fake.delay = 0.4
    flood_seconds, results = out["seconds"], [tuple(r) for r in out["results"]]
    assert len(results) == 300 and flood_seconds < 3.5, flood_seconds     # 100 a second, kept up
    assert status == 200 and level_of(answers) == "urgent" and other_took < 3, other_took
    throttled = [a for s, a in results if s == 429]
    passed = len(results) - len(throttled)
    assert passed <= 8 * (1 + int(flood_seconds // 10)), (passed, flood_seconds)   # 8 per 10 s window
    assert clinic_phone in texts(throttled[0]) and "urgent" in texts(throttled[0]).lower()
    assert sum(1 for s, m in servers.fake.messages if s == "rest-flood") == passed     # the rest never reach Rasa
    print(f"flood: {len(results)} messages in {flood_seconds:.2f} s, {len(throttled)} throttled; "
          f"the other patient's red flag answered in {other_took:.2f} s")


def test_rasa_down_a_red_flag_still_gets_its_answer_and_the_numbers(servers, clinic_phone):
    servers.fake.down = True
    try:
        start = time.monotonic()
        status, answers = post(servers, {"sender": "while-down", "message": "my lips and tongue are swelling"})
        took = time.monotonic() - start
        _, calm = post(servers, {"sender": "while-down-2", "message": "when can I have a bath?"})
    finally:
        servers.fake.down = False
    assert status == 200 and level_of(answers) == "emergency" and took < 3
    assert servers.clinic.emergency_number in texts(answers)
    assert clinic_phone in texts(calm)          # no answer is ever empty


@pytest.fixture
def clinic_phone(servers):
    return servers.clinic.phone


def test_no_words_and_no_raw_ids_in_the_gateways_logs(servers, caplog):
    marker = "zebracorn marmalade fever 39.2"
    with caplog.at_level("INFO"):
        post(servers, {"sender": "marker-sender", "message": marker})
        servers.fake.down = True
        try:
            post(servers, {"sender": "marker-sender", "message": marker})
        finally:
            servers.fake.down = False
        client = Client(servers).connect()
        client.emit("session_request", {})
        wait_for(lambda: client.confirmed, what="a session")
        client.emit("user_uttered", {"message": marker})
        wait_for(lambda: any("custom" in e for e in client.received), what="an answer")
        client.close()
    text = caplog.text.lower()
    assert "answering locally" in text             # the outage was logged ...
    for secret in ("zebracorn", "marmalade", "39.2", "fever", "marker-sender", client.confirmed[0][:12]):
        assert secret not in text, secret          # ... without the words, the symptom or the ids


def test_a_red_flag_answered_without_a_triage_gets_the_engines_answer_first(servers):
    original = servers.fake.answer
    servers.fake.answer = staticmethod(lambda message: [{"text": "Here is our leaflet on baths."}])
    try:
        status, answers = post(servers, {"sender": "faq-miss", "message": "I fainted in the shower and feel faint"})
    finally:
        servers.fake.answer = original
    assert status == 200 and level_of(answers) == "emergency"
    assert answers[-1]["text"] == "Here is our leaflet on baths."           # Rasa's words kept, after
    assert servers.clinic.emergency_number in answers[0]["text"]
