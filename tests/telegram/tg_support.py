"""Test harness for the patients' Telegram channel: a stub Rasa and the bot on a background loop.

pytest-asyncio is not installed: the Telegram application (polling or webhook), the gateway and the
stub Rasa run on an event loop in a background thread; tests drive them from the test thread
through the Bot API emulator (tests/support/telegram_emulator.py) and wait with its blocking helpers.
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.channels.telegram.app import ALLOWED_UPDATES, build_application
from bot.channels.telegram.gateway import PatientGateway
from bot.channels.telegram.identity import opaque_id
from bot.channels.telegram.webhook import WebhookConfig, WebhookServer
from bot.escalation.service import Escalations

SECRET = b"test-telegram-id-secret-0123456789"
WEBHOOK_SECRET = "webhook_Secret-42"
STAFF_CHAT = -1001234567
CLINIC_PHONE = "020 7946 0321"
EMERGENCY = "999"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conv_id(chat_id: int) -> str:
    return opaque_id(SECRET, chat_id)


class StubRasa:
    """Imitates Rasa's REST channel (POST /webhooks/rest/webhook) and the tracker API
    (PUT /conversations/{id}/tracker/events, GET /conversations/{id}/tracker).

    `reply(sender, message)` gives the answers (default: "You said: <message>"); `status` other
    than 200 makes the REST channel fail; `append_only` imitates Rasa's SQL tracker store, where a
    PUT of [] leaves the stored events in place; `delay` holds each answer back."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []          # REST bodies, in order
        self.tracker_puts: list[tuple] = []               # (conversation id, events)
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.status = 200
        self.append_only = False
        self.delay: Callable[[str], float] = lambda message: 0.0
        self.reply: Callable[[str, str], list[dict[str, Any]]] = lambda sender, message: [
            {"recipient_id": sender, "text": f"You said: {message}"}]
        self.app = web.Application()
        self.app.router.add_post("/webhooks/rest/webhook", self.rest)
        self.app.router.add_put("/conversations/{cid}/tracker/events", self.put_events)
        self.app.router.add_get("/conversations/{cid}/tracker", self.get_tracker)
        self.runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def messages_from(self, sender: str) -> list[str]:
        return [r["message"] for r in self.requests if r["sender"] == sender]

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def rest(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if self.status != 200:
            return web.Response(status=self.status, text="unavailable")
        await asyncio.sleep(self.delay(body["message"]))
        answers = self.reply(body["sender"], body["message"])
        log = self.events.setdefault(body["sender"], [])
        log.append({"event": "user", "text": body["message"]})
        log.extend({"event": "bot", "text": a.get("text")} for a in answers if a.get("text"))
        return web.json_response(answers)

    async def put_events(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        events = await request.json()
        self.tracker_puts.append((cid, events))
        if not self.append_only:
            self.events[cid] = list(events)
        return web.json_response({"sender_id": cid, "events": self.events.get(cid, [])})

    async def get_tracker(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        stored = self.events.get(cid, [])
        started = [{"event": "action", "name": "action_session_start"}, {"event": "session_started"},
                   {"event": "action", "name": "action_listen"}]
        return web.json_response({"sender_id": cid, "events": stored or started})


class Harness:
    """The Telegram application with the patients' gateway, on a loop in a background thread."""

    def __init__(self, emu, sessions, mode: str = "polling", rasa_url: str | None = None,
                 webhook_port: int | None = None, record_when_rasa_down: bool = True) -> None:
        self.emu = emu
        self.sessions = sessions
        self.mode = mode
        self.rasa = StubRasa()
        self._rasa_url = rasa_url
        self.webhook_port = webhook_port or free_port()
        self.record_when_rasa_down = record_when_rasa_down
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tg-harness", daemon=True)
        self.app = self.gateway = self.server = None

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}/telegram/webhook"

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> Harness:
        self.thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        await self.rasa.start()
        self.gateway = PatientGateway(self._rasa_url or self.rasa.url, SECRET, sessions=self.sessions,
                                      rasa_timeout=5, record_when_rasa_down=self.record_when_rasa_down)
        escalations = Escalations(self.sessions)
        self.app = build_application(self.emu.token, escalations, str(STAFF_CHAT), self.emu.base_url,
                                     gateway=self.gateway)
        await self.app.initialize()
        await self.gateway.start()
        await self.app.start()
        if self.mode == "polling":
            await self.app.updater.start_polling(poll_interval=0, timeout=1, allowed_updates=ALLOWED_UPDATES)
        else:
            config = WebhookConfig(self.webhook_url, WEBHOOK_SECRET, "127.0.0.1", self.webhook_port)
            self.server = WebhookServer(self.app, config, sessions=self.sessions, poll_seconds=0.5)
            await self.server.start()

    def stop(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    async def _stop(self) -> None:
        if self.app is not None:
            if self.mode == "polling" and self.app.updater.running:
                await self.app.updater.stop()
            if self.server is not None:
                await self.server.stop()
            if self.app.running:
                await self.app.stop()
            await self.app.shutdown()
        if self.gateway is not None:
            await self.gateway.close()
        await self.rasa.stop()

    def __enter__(self) -> Harness:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- emulator helpers ---------------------------------------------------------------------------------
def wait_messages(emu, chat_id: int, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    emu.wait_until(lambda: len(emu.sent_messages(chat_id)) >= count, timeout=timeout,
                   what=f"{count} messages to chat {chat_id}")
    return emu.sent_messages(chat_id)


def say(emu, chat_id: int, text: str, expect: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
    """The patient sends `text`; returns the bot's next `expect` messages to that chat."""
    before = len(emu.sent_messages(chat_id))
    emu.push_message(chat_id, text)
    return wait_messages(emu, chat_id, before + expect, timeout)[before:]


def send_calls(emu, chat_id: int) -> list[dict[str, Any]]:
    return [c.params for c in emu.calls_to("sendMessage") if str(c.params.get("chat_id")) == str(chat_id)]


def consent_message(emu, chat_id: int) -> dict[str, Any]:
    return [m for m in emu.sent_messages(chat_id)
            if "consent:yes" in json.dumps(m.get("reply_markup") or {})][-1]


def give_consent(emu, chat_id: int) -> list[dict[str, Any]]:
    """/start, then "I agree"; returns the thank-you message(s)."""
    say(emu, chat_id, "/start", expect=2)
    before = len(emu.sent_messages(chat_id))
    emu.push_callback_query(chat_id, consent_message(emu, chat_id)["message_id"], "consent:yes")
    return wait_messages(emu, chat_id, before + 1)[before:]


def eventually(condition: Callable[[], Any], timeout: float = 5, what: str = "condition") -> Any:
    """Poll a condition the emulator is not told about (database state)."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            assert value, f"timed out after {timeout}s waiting for {what}"
            return value
        time.sleep(0.05)
