"""A fake Rasa REST channel for the chat page's browser tests.

The page talks to the web app's socket.io; the web app's gateway posts each message to Rasa's REST
channel, here this fake: `POST /webhooks/rest/webhook` {sender, message} is recorded in `messages`
and answered with texts (buttons as Rasa sends them) and {"custom": {"triage": ...}} after the text
it belongs to. (It still speaks Rasa's socket.io channel too, for tests of that channel.)

Scripted answers: "lips" -> emergency; "<" (markup) -> the message echoed back, level info;
a quick-reply payload "yes, the painkillers help" -> thanks, level info; anything else -> urgent
plus a follow-up question with quick replies. `go_down()` cuts every connection and answers 503
until `down` is set back to False (Rasa restarting); the REST channel then answers 503.
"""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Set, Tuple

import socketio
from aiohttp import web

REPLY_DELAY = 0.4      # seconds before the first answer, so the page's typing indicator shows


def triage(level: str, findings: List[Dict[str, Any]], reasons: List[str], escalation_id=None) -> Dict[str, Any]:
    return {"custom": {"triage": {"level": level, "findings": findings, "reasons": reasons,
                                  "escalation_id": escalation_id}}}


def finding(concept: str, name: str, text: str, level: str, **extra: Any) -> Dict[str, Any]:
    f = {"concept": concept, "name": name, "text": text, "level": level, "negated": False,
         "hypothetical": False, "other_experiencer": False, "proxy": False, "counts": True,
         "from_earlier": False, "values": {}}
    f.update(extra)
    return f


class FakeRasa:
    def __init__(self) -> None:
        self.sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
        self.down = False                                 # an outage: /socket.io/ answers 503
        self.delay = REPLY_DELAY
        self._transports: Set[asyncio.BaseTransport] = set()
        self.app = web.Application(middlewares=[self._outage])
        self.sio.attach(self.app, socketio_path="/socket.io")
        self.session_requests: List[str] = []            # session ids, in order
        self.messages: List[Tuple[str, str]] = []         # (session_id, message)
        self.sio.on("session_request", self.on_session_request)
        self.sio.on("user_uttered", self.on_user_uttered)
        self.app.router.add_post("/webhooks/rest/webhook", self.rest)

    async def rest(self, request: web.Request) -> web.Response:
        if self.down:
            raise web.HTTPServiceUnavailable()
        body = await request.json()
        self.messages.append((body["sender"], body["message"]))
        await asyncio.sleep(self.delay)
        answers = []
        for event in self.answer(body["message"]):
            if "quick_replies" in event:
                event = {"text": event["text"], "buttons": [{"title": q["title"], "payload": q["payload"]}
                                                            for q in event["quick_replies"]]}
            answers.append({"recipient_id": body["sender"], **event})
        return web.json_response(answers)

    @web.middleware
    async def _outage(self, request: web.Request, handler):
        if request.path.startswith(("/socket.io", "/webhooks")):
            if self.down:
                raise web.HTTPServiceUnavailable()
            if request.transport is not None:
                self._transports.add(request.transport)
        return await handler(request)

    async def go_down(self) -> None:
        """Cut every connection (as a crash would) and refuse new ones until `down` is False."""
        self.down = True
        for transport in list(self._transports):
            transport.close()
        self._transports.clear()

    async def on_session_request(self, sid: str, data: Dict[str, Any]) -> None:
        session_id = (data or {}).get("session_id")
        if not session_id:
            session_id = "server-made-" + sid
        self.session_requests.append(session_id)
        await self.sio.enter_room(sid, session_id)
        await self.sio.emit("session_confirm", session_id, room=sid)

    async def on_user_uttered(self, sid: str, data: Dict[str, Any]) -> None:
        session_id = (data or {}).get("session_id")
        if not session_id:
            return                      # Rasa ignores it (and warns)
        message = str(data.get("message", ""))
        self.messages.append((session_id, message))
        await asyncio.sleep(REPLY_DELAY)
        for event in self.answer(message):
            await self.sio.emit("bot_uttered", event, room=session_id)
            await asyncio.sleep(0.02)

    @staticmethod
    def answer(message: str) -> List[Dict[str, Any]]:
        if "lips" in message.lower():
            return [
                {"text": "Call 999 now. What you describe (swelling of the face, lips or throat) needs "
                         "help straight away. Tell them you had an HSG."},
                triage("emergency", [finding("allergic_reaction", "Swelling of the face, lips or throat",
                                             "lips", "emergency")],
                       ["Swelling of the face, lips or throat ('lips'): red flag -> emergency"]),
                {"text": "If you can, tell the clinic afterwards on 020 7946 0321. "
                         "I'm an automated assistant and can't call for you."},
            ]
        if "<" in message:
            return [
                {"text": "You said: " + message},
                triage("info", [finding("x", "<img src=x onerror=alert(3)> name", "<b>", "self_care")],
                       ["<script>alert(4)</script>"]),
            ]
        if message == "yes, the painkillers help":
            return [{"text": "Thank you, that helps."}, triage("info", [], [])]
        return [
            {"text": "Please call the clinic now on 020 7946 0321 (out of hours: 020 7946 0999). "
                     "What you describe (fever (temperature 38.4 °C)) is a warning sign after an HSG."},
            triage("urgent", [finding("fever", "Fever or feeling feverish", "38.4", "urgent",
                                      values={"temperature": "38.4 °C"}),
                              finding("light_bleeding", "Spotting or light bleeding", "bleeding", "info",
                                      negated=True, counts=False)],
                   ["Fever or feeling feverish ('38.4'): warning sign -> urgent"], escalation_id="ESC-20261126-0042"),
            {"text": "Do painkillers such as ibuprofen or paracetamol help with the pain?",
             "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "yes, the painkillers help"},
                               {"content_type": "text", "title": "No", "payload": "no, the painkillers don't help"}]},
        ]
