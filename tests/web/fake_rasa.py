"""A fake Rasa REST channel for the chat page's browser tests.

The page talks to the web app's socket.io; the web app's gateway posts each message to Rasa's REST
channel, here this fake: `POST /webhooks/rest/webhook` {sender, message} is recorded in `messages`
and answered with texts (buttons as Rasa sends them) and {"custom": {"triage": ...}} after the text
it belongs to.

Scripted answers: "lips" -> emergency; "<" (markup) -> the message echoed back, level info;
a quick-reply payload "yes, the painkillers help" -> thanks, level info; anything else -> urgent
plus a follow-up question with quick replies. While `down` is True the channel answers 503 (Rasa
restarting); `delay` is how long it thinks before answering.
"""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Tuple

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
        self.down = False                                 # an outage: the channel answers 503
        self.delay = REPLY_DELAY
        self.messages: List[Tuple[str, str]] = []         # (sender, message)
        self.app = web.Application()
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
