"""`make run-scale`: two Rasa instances behind HAProxy on PostgreSQL (tracker) and Redis (locks).

One conversation's turns go alternately to different instances, and another conversation's turns
hit both instances at the same moment: every event must be stored once, in order, each turn's
answer complete before the next message is read (the lock store serialises a conversation across
instances; bot/locks.py makes Rasa's Redis lock store safe for that). PostgreSQL and Redis run on
this machine (.ci/run starts them).
"""
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from support.paths import trained_model

pytestmark = pytest.mark.rasa
ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ["hello", "I had my HSG yesterday", "I have some cramps", "about a 3", "yes they help",
            "can I have a bath?", "a bit of spotting too", "thanks", "my temperature is 37.2", "ok bye"]


def _free():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_up() -> bool:
    try:
        sa.create_engine("postgresql://postgres@127.0.0.1:5432/postgres").connect().close()
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    import shutil
    if not _postgres_up():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    if not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()):
        pytest.skip("HAProxy is not installed (apt-get install haproxy; .ci/run installs it)")
    tmp = tmp_path_factory.mktemp("scale")
    tag = uuid.uuid4().hex[:8]
    balancer = _free()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HSG_RASA_PORT": str(balancer),
           "HSG_WEB_PORT": str(_free()), "HSG_DATA_DIR": str(tmp / "var"),
           "TRACKER_DB_NAME": f"hsg_tracker_test_{tag}", "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/hsg_test_{tag}"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    log = open(tmp / "run.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run-scale", "--model", str(trained_model()),
                             "--instances", "2"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.time() + 400
        while time.time() < deadline and "is running" not in (tmp / "run.log").read_text():
            assert proc.poll() is None, (tmp / "run.log").read_text()[-3000:]
            time.sleep(1)
        assert "is running" in (tmp / "run.log").read_text(), (tmp / "run.log").read_text()[-3000:]
        yield {"balancer": balancer, "instances": [balancer + 100, balancer + 101],
               "tracker": sa.create_engine(f"postgresql://postgres@127.0.0.1:5432/hsg_tracker_test_{tag}")}
    finally:
        os.killpg(os.getpgid(proc.pid), signal.SIGTERM)
        proc.wait(timeout=60)
        admin = sa.create_engine("postgresql://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for db in (f"hsg_tracker_test_{tag}", f"hsg_test_{tag}"):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


async def _say(http, port, sender, text):
    async with http.post(f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                         json={"sender": sender, "message": text}) as r:
        assert r.status == 200
        return await r.json()


def _events(engine, sender):
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, type_name, action_name, data FROM events WHERE sender_id = :s "
                                    "ORDER BY id"), {"s": sender}).all()
    return rows


def _turns(rows):
    """The user messages in stored order, and whether every turn ended (action_listen) before the next."""
    texts, open_turn, interleaved = [], False, False
    import json
    for _, type_name, action_name, data in rows:
        if type_name == "user":
            interleaved |= open_turn
            texts.append(json.loads(data)["text"])
            open_turn = True
        elif type_name == "action" and action_name == "action_listen":
            open_turn = False
    return texts, interleaved


def test_turns_alternating_between_instances_are_stored_once_and_in_order(scaled):
    sender = "alt-" + uuid.uuid4().hex[:8]

    async def go():
        async with aiohttp.ClientSession() as http:
            answers = []
            for i, text in enumerate(MESSAGES):
                answers.append(await _say(http, scaled["instances"][i % 2], sender, text))
            return answers

    answers = asyncio.run(go())
    assert all(answers), "every turn answered"
    rows = _events(scaled["tracker"], sender)
    texts, interleaved = _turns(rows)
    assert texts == MESSAGES                      # none lost, none duplicated, none reordered
    assert not interleaved
    assert len({r[0] for r in rows}) == len(rows)


def test_simultaneous_turns_of_one_conversation_on_both_instances_are_serialised(scaled):
    sender = "both-" + uuid.uuid4().hex[:8]
    sent = [f"{m} ({i})" for i, m in enumerate(MESSAGES)]

    async def go():
        async with aiohttp.ClientSession() as http:
            for a, b in zip(sent[::2], sent[1::2]):
                await asyncio.gather(_say(http, scaled["instances"][0], sender, a),
                                     _say(http, scaled["instances"][1], sender, b))

    asyncio.run(go())
    texts, interleaved = _turns(_events(scaled["tracker"], sender))
    assert sorted(texts) == sorted(sent) and len(texts) == len(sent)
    assert not interleaved, "a turn began before the other instance's turn had ended"


def test_the_balancer_serves_a_conversation(scaled):
    sender = "lb-" + uuid.uuid4().hex[:8]

    async def go():
        async with aiohttp.ClientSession() as http:
            return [await _say(http, scaled["balancer"], sender, m) for m in MESSAGES[:4]]

    assert all(asyncio.run(go()))
    assert _turns(_events(scaled["tracker"], sender))[0] == MESSAGES[:4]
