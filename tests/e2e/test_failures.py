"""Failure paths with real processes: PostgreSQL going away, the action server killed, Rasa killed.

A red flag through the web app (REST on its port, and the page in headless Chromium) still gets its
level's answer with the clinic's numbers within 3 s, and its escalation is in the database once the
database is back (from the spool). Own Rasa and action server (the shared live_bot stays up); the
database is this machine's PostgreSQL behind a TCP proxy that the test cuts and restores.
(Telegram's own fallbacks: tests/telegram/test_tg_gateway.py, Rasa down and Rasa unreachable.)
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import settings as bot_settings
from bot.channels.core import PatientGateway
from bot.channels.core.rasa import RasaClient
from bot.channels.core.spool import Spool
from bot.store.db import Database
from bot.store.models import Escalation
from bot.escalation.service import Escalations
from bot.triage import engine
from bot.web.app import create_app
from bot.web.chat import ChatServer, SessionTokens, escalation_recorder
from support.browser import chromium
from support.databases import PostgresSchema, postgres_available
from web.conftest import ServerThread, _free_port, _serve_on

pytestmark = [pytest.mark.rasa, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]
BUDGET = 3.0


class TcpProxy:
    """127.0.0.1:port -> target, in its own loop; stop() refuses and cuts, start() restores."""

    def __init__(self, target_port: int) -> None:
        self.target, self.port = target_port, _free_port()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.server, self.links = None, set()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except Exception:
            pass
        finally:
            writer.close()

    async def _handle(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self.links |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def start(self):
        async def go():
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self._call(go())

    def stop(self):
        async def go():
            self.server.close()
            await self.server.wait_closed()
            for w in list(self.links):
                w.close()
            self.links.clear()
        self._call(go())


def post(port, sender, message, timeout=30):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                                 data=json.dumps({"sender": sender, "message": message}).encode(),
                                 headers={"Content-Type": "application/json"})
    start = time.monotonic()
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r), time.monotonic() - start


def level(answers):
    return next((a["custom"]["triage"]["level"] for a in answers if (a.get("custom") or {}).get("triage")), None)


def words(answers):
    return " ".join(a.get("text", "") for a in answers)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from support.paths import trained_model
    from support.processes import wait_http
    if not postgres_available():
        pytest.fail("PostgreSQL on 127.0.0.1:5432 is not reachable (.ci/run starts it)")
    tmp = tmp_path_factory.mktemp("failures")
    schema = PostgresSchema()
    proxy = TcpProxy(5432)
    proxy.start()
    url = schema.url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    db = Database(url)                                       # migrated through the proxy
    rasa_port, action_port = _free_port(), _free_port()
    template = tmp / "endpoints.yml"
    template.write_text(f'action_endpoint:\n  url: "http://127.0.0.1:{action_port}/webhook"\n'
                        f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{tmp / "tracker.db"}"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "DATABASE_URL": url,
           "HSG_DATA_DIR": str(tmp / "var"), "HSG_ENDPOINTS_TEMPLATE": str(template)}
    logs = [open(tmp / "actions.log", "w"), open(tmp / "rasa.log", "w")]
    procs = {"actions": subprocess.Popen([sys.executable, "-m", "bot", "actions", "--port", str(action_port)],
                                         cwd=ROOT, env=env, stdout=logs[0], stderr=subprocess.STDOUT),
             "rasa": subprocess.Popen([sys.executable, "-m", "bot", "rasa", "--model", str(trained_model()),
                                       "--port", str(rasa_port), "--action-port", str(action_port)],
                                      cwd=ROOT, env=env, stdout=logs[1], stderr=subprocess.STDOUT)}
    thread = ServerThread()
    try:
        wait_http(f"http://127.0.0.1:{action_port}/health", procs["actions"])
        wait_http(f"http://127.0.0.1:{rasa_port}/version", procs["rasa"])
        from bot.channels.core.staff_warning import telegram_staff_warning
        from support.telegram_emulator import TelegramEmulator
        emu = TelegramEmulator().__enter__()
        spool = Spool(tmp / "var" / "spool", warn=telegram_staff_warning(emu.token, "-100777", emu.base_url))
        recorder = escalation_recorder({"rest": "REST", "web": "web page"}, spool, Escalations(db.sessions))
        gateway = PatientGateway(RasaClient(f"http://127.0.0.1:{rasa_port}"), engine=engine, recorder=recorder)
        settings = dataclasses.replace(bot_settings.load(), data_dir=tmp / "var")
        web_port = _free_port()
        chat = ChatServer(gateway, SessionTokens(b"s" * 32), [f"http://127.0.0.1:{web_port}"])
        chat.spool, chat.replay_commit = spool, recorder.commit
        thread.call(_serve_on(thread, create_app(f"http://127.0.0.1:{rasa_port}", settings, chat=chat), web_port))
        post(web_port, "warm-up", "hello", timeout=120)        # the first turn loads the models
        yield dataclasses.make_dataclass("Stack", ["web_port", "procs", "proxy", "db", "spool", "clinic", "rasa_url", "emu"])(
            web_port, procs, proxy, db, spool, settings.clinic, f"http://127.0.0.1:{rasa_port}", emu)
    finally:
        thread.close()
        if "emu" in locals():
            emu.__exit__(None, None, None)
        for p in procs.values():
            p.kill()
            p.wait(timeout=20)
        for log in logs:
            log.close()
        db.dispose()
        schema.drop()


def escalations(db, conversation_id):
    with db.sessions() as s:
        return s.execute(select(Escalation).where(Escalation.conversation_id == conversation_id)).scalars().all()


def assert_safety_answer(stack, answers, took, least="emergency"):
    assert took < BUDGET, took
    assert level(answers) == least, answers
    assert stack.clinic.emergency_number in words(answers) or stack.clinic.phone in words(answers)


def page_red_flag(stack, message, shot):
    """The chat page in headless Chromium: a red flag, its emergency banner within the budget."""
    from playwright.sync_api import expect

    with chromium() as browser:
        page = browser.new_context(viewport={"width": 360, "height": 640}).new_page()
        page.goto(f"http://127.0.0.1:{stack.web_port}/")
        expect(page.locator("#status")).to_have_text("Connected", timeout=20_000)
        box = page.get_by_label("Your message")
        box.fill(message)
        start = time.monotonic()
        box.press("Enter")
        expect(page.get_by_role("alert")).to_contain_text(stack.clinic.emergency_number, timeout=BUDGET * 1000)
        took = time.monotonic() - start
        expect(page.locator(".card.level-emergency")).to_be_visible()
        page.screenshot(path=str(shot))
    assert took < BUDGET + 0.5, took


def telegram_red_flag(stack, chat, message, sessions=None, while_down=None):
    """A consented Telegram patient (the Bot API emulator): the emergency answer within the budget.
    while_down: (cut, restore) run around the red flag (consent is given before the cut)."""
    import importlib.util

    from support.telegram_emulator import TelegramEmulator
    spec = importlib.util.spec_from_file_location("tg_support", ROOT / "tests" / "telegram" / "tg_support.py")
    tg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tg)
    with TelegramEmulator() as emu, tg.Harness(emu, sessions or stack.db.sessions, rasa_url=stack.rasa_url):
        tg.give_consent(emu, chat)
        if while_down:
            while_down[0]()
        before = len(emu.sent_messages(chat))
        start = time.monotonic()
        emu.push_message(chat, message)
        emu.wait_until(lambda: any(tg.EMERGENCY in m["text"] for m in emu.sent_messages(chat)[before:]),
                       timeout=BUDGET, what="the emergency answer")
        assert time.monotonic() - start < BUDGET
        if while_down:
            while_down[1]()
            conv = tg.conv_id(chat)           # the spool is replayed by the running gateway
            deadline = time.monotonic() + 60
            while not escalations(stack.db, conv) and time.monotonic() < deadline:
                time.sleep(0.5)
    return tg.conv_id(chat)


def test_postgres_down_the_answer_comes_first_and_the_escalation_once_it_is_back(stack, tmp_path):
    stack.proxy.stop()
    try:
        answers, took = post(stack.web_port, "pg-down", "I fainted at home and I'm bleeding heavily")
        assert_safety_answer(stack, answers, took)
        deadline = time.monotonic() + 90
        while stack.spool.pending() == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert stack.spool.pending() >= 1          # spooled, not lost
        # ... and the staff chat is told by a path that does not need the database (no patient data)
        stack.emu.wait_until(lambda: stack.emu.sent_messages(-100777), timeout=30, what="the staff warning")
        warning = stack.emu.sent_messages(-100777)[0]["text"]
        assert "database is unavailable" in warning and "faint" not in warning.lower()
        page_red_flag(stack, "my lips are swelling and I can't breathe", tmp_path / "pg-down-page.png")
    finally:
        stack.proxy.start()
    # Telegram: consent cannot be checked while the database is down; the answer still comes, and
    # the escalation is spooled and committed once it is back (the patient had consented)
    conv = telegram_red_flag(stack, 454545, "my tongue is swelling and I'm wheezing",
                             while_down=(stack.proxy.stop, stack.proxy.start))
    found = escalations(stack.db, conv)
    assert len(found) == 1 and found[0].level == "emergency" and found[0].contact["channel"] == "telegram"
    deadline = time.monotonic() + 60
    while not escalations(stack.db, "rest-pg-down") and time.monotonic() < deadline:
        time.sleep(0.5)
    found = escalations(stack.db, "rest-pg-down")
    assert len(found) == 1 and found[0].level == "emergency"


def test_action_server_killed_a_red_flag_still_gets_its_answer(stack, tmp_path):
    stack.procs["actions"].kill()
    stack.procs["actions"].wait(timeout=20)
    answers, took = post(stack.web_port, "no-actions", "my lips and tongue are swelling up")
    assert_safety_answer(stack, answers, took)
    page_red_flag(stack, "my throat is closing up and my lips are swelling", tmp_path / "no-actions-page.png")
    conv = telegram_red_flag(stack, 434343, "my tongue is swelling and I'm wheezing")
    deadline = time.monotonic() + 30
    while not escalations(stack.db, conv) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert escalations(stack.db, conv)
    deadline = time.monotonic() + 30
    while not escalations(stack.db, "rest-no-actions") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert escalations(stack.db, "rest-no-actions")


def test_rasa_killed_a_red_flag_on_rest_and_on_the_page_still_gets_its_answer(stack, tmp_path):
    stack.procs["rasa"].kill()
    stack.procs["rasa"].wait(timeout=20)
    answers, took = post(stack.web_port, "no-rasa", "I have a fever of 39.1 and shivering")
    assert_safety_answer(stack, answers, took, least="urgent")
    page_red_flag(stack, "I can't breathe and my chest is tight", tmp_path / "rasa-down-page.png")


def test_rasa_killed_a_red_flag_on_telegram_still_gets_its_answer(stack):
    """(runs after Rasa was killed above) Telegram's patients, through the same gateway."""
    assert stack.procs["rasa"].poll() is not None
    conv = telegram_red_flag(stack, 424242, "my lips and tongue are swelling up")
    found = escalations(stack.db, conv)
    assert len(found) == 1 and found[0].level == "emergency" and found[0].contact["channel"] == "telegram"
