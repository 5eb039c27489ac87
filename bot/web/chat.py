"""The patients' chat as the web app serves it: socket.io for the page, REST for integrations,
both through the channel-neutral gateway (bot/channels/core). Patients never reach Rasa's port.

socket.io (same events as Rasa's channel, so the page's protocol is unchanged):
  the page emits `session_request` {session_id} and gets `session_confirm` <token>: the token is
  issued and signed by this server (HMAC with the id secret); a token that does not verify, or one
  already bound to another live socket, gets a fresh session. The session is bound to the socket
  there and then: `user_uttered` {message} is read as the bound session's, whatever session_id it
  names. Connections from an Origin outside the allow-list are refused.
REST: `POST /webhooks/rest/webhook` {"sender", "message"} -> Rasa's REST answer list (with the
  custom.triage payload); 429 when the sender or address is over its limit, 413 over the size cap.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import socketio
from aiohttp import web

from bot.channels.core import Inbound, PatientGateway
from bot.channels.core.recording import escalation_recorder  # noqa: F401 - the web app's recorder

if TYPE_CHECKING:
    from bot.channels.core.spool import Spool

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # a REST body (the text cap itself is the gateway's)


class SessionTokens:
    """Server-issued session ids: <32 hex>.<signature>; the conversation is web-<32 hex>."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _sign(self, sid: str) -> str:
        return hmac.new(self.secret, f"web-session:{sid}".encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self) -> str:
        sid = secrets.token_hex(16)
        return f"{sid}.{self._sign(sid)}"

    def verify(self, token: Any) -> str | None:
        """The session's id when the token is one of ours, else None."""
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 80:
            return None
        sid, sig = token.split(".")
        if len(sid) != 32 or not hmac.compare_digest(sig, self._sign(sid)):
            return None
        return sid


def to_events(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rasa REST answers -> the page's bot_uttered events ({text, quick_replies} or {custom})."""
    events = []
    for a in answers:
        buttons = a.get("buttons") or a.get("quick_replies") or []
        buttons = buttons if isinstance(buttons, list) else []
        if isinstance(a.get("text"), str):
            event: dict[str, Any] = {"text": a["text"]}
            replies = [
                {
                    "content_type": "text",
                    "title": str(b.get("title", "")),
                    "payload": str(b.get("payload", b.get("title", ""))),
                }
                for b in buttons
                if isinstance(b, dict)
            ]
            if replies:
                event["quick_replies"] = replies
            events.append(event)
        if isinstance(a.get("custom"), dict):
            events.append({"custom": a["custom"]})
    return events


class ChatServer:
    def __init__(self, gateway: PatientGateway, tokens: SessionTokens, origins: list[str], forgetter=None) -> None:
        self.gateway, self.tokens, self.forgetter = gateway, tokens, forgetter
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            cors_allowed_origins=origins or [],
            max_http_buffer_size=MAX_BODY,
            logger=False,
            engineio_logger=False,
        )
        self.bound: dict[str, str] = {}  # socket id -> session id
        self.confirmed: list[str] = []  # conversation ids confirmed, in order (tests, audits)
        self.sio.on("session_request", self.on_session_request)
        self.sio.on("user_uttered", self.on_user_uttered)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on("forget", self.on_forget)

    spool: Spool | None = None
    replay_commit: Callable[[dict[str, Any]], Any] | None = None

    def attach(self, app: web.Application, push_secret: str | None = None) -> None:
        self.sio.attach(app, socketio_path="/socket.io")
        app.on_startup.append(self._start_background)  # type: ignore[arg-type]  # aiohttp 3.9's signal alias predates aiosignal 1.4's Signal[*Ts]
        app.on_cleanup.append(self._stop_background)  # type: ignore[arg-type]  # aiohttp 3.9's signal alias predates aiosignal 1.4's Signal[*Ts]
        app.router.add_post("/webhooks/rest/webhook", self.rest)
        self.push_secret = push_secret
        app.router.add_post("/internal/push", self.push_endpoint)

    async def _start_background(self, app: web.Application) -> None:
        """Load the engine ahead of the first patient, and replay the spool while the app runs."""
        import asyncio

        self._tasks = [asyncio.ensure_future(asyncio.to_thread(self.gateway.engine))]
        if self.spool is not None and self.replay_commit is not None:
            self._tasks.append(asyncio.ensure_future(self.spool.replay_forever(self.replay_commit)))

    async def _stop_background(self, app: web.Application) -> None:
        for task in getattr(self, "_tasks", []):
            task.cancel()

    async def push_endpoint(self, request: web.Request) -> web.Response:
        """The relay's 'please call us' notice into an open page: loopback and the internal secret."""
        from bot.service_auth import bearer_matches

        if (
            request.remote not in ("127.0.0.1", "::1")
            or not self.push_secret
            or not bearer_matches(request.headers.get("Authorization"), self.push_secret)
        ):
            raise web.HTTPForbidden()
        body = await request.json()
        delivered = await self.push(str(body.get("conversation_id", "")), list(body.get("messages") or []))
        return web.json_response({"delivered": delivered})

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        self.bound.pop(sid, None)

    async def on_session_request(self, sid: str, data: Any) -> None:
        asked = self.tokens.verify((data or {}).get("session_id") if isinstance(data, dict) else None)
        if asked is not None and asked in {s for k, s in self.bound.items() if k != sid}:
            log.warning("a second socket asked for a session that is bound to a live one; new session")
            asked = None
        token = None
        if asked is None:
            token = self.tokens.issue()
            asked = token.split(".")[0]
        else:
            token = (data or {}).get("session_id")
        old = self.bound.get(sid)
        if old and old != asked:
            await self.sio.leave_room(sid, old)
        self.bound[sid] = asked
        await self.sio.enter_room(sid, asked)
        self.confirmed.append(f"web-{asked}")
        await self.sio.emit("session_confirm", token, room=sid)

    async def on_user_uttered(self, sid: str, data: Any) -> None:
        session = self.bound.get(sid)
        if session is None:  # no session_request yet: refuse, say nothing
            return
        message = data.get("message") if isinstance(data, dict) else None
        environ = self.sio.get_environ(sid) or {}
        request = environ.get("aiohttp.request")
        reply = await self.gateway.handle(
            Inbound("web", f"web-{session}", message, getattr(request, "remote", "") or "")
        )
        for event in to_events(reply.messages):
            await self.sio.emit("bot_uttered", event, room=session)

    async def on_forget(self, sid: str, data: Any = None) -> None:
        """ "Delete my conversation": Rasa's tracker and the stored events, the contact and consent
        rows (the same path as Telegram's /forget); the session is unbound; the page clears itself."""
        from bot.channels.core.gateway import say

        session = self.bound.pop(sid, None)
        cleared = True
        if session is not None:
            await self.sio.leave_room(sid, session)
            cleared = await self.forgetter(f"web-{session}") if self.forgetter else False
        texts = [say("forget_done" if cleared else "forget_partly")["text"], say("forget_kept")["text"]]
        await self.sio.emit("forgotten", {"texts": texts, "cleared": cleared}, room=sid)

    async def push(self, conversation_id: str, answers: list[dict[str, Any]]) -> bool:
        """Messages the clinic's side sends into a web conversation (e.g. 'please call us')."""
        if not conversation_id.startswith("web-"):
            return False
        for event in to_events(answers):
            await self.sio.emit("bot_uttered", event, room=conversation_id[len("web-") :])
        return True

    async def rest(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
        try:
            body = json.loads(await request.content.read(MAX_BODY + 1) or b"{}")
        except (ValueError, UnicodeDecodeError):
            return web.json_response(
                {"error": "the body must be JSON: {\"sender\": ..., \"message\": ...}"}, status=400
            )
        if not isinstance(body, dict):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        reply = await self.gateway.handle(
            Inbound("rest", body.get("sender") or "anonymous", body.get("message"), request.remote or "")
        )
        status = {"throttled": 429, "too_long": 413}.get(reply.status, 200)
        answers = [{"recipient_id": reply.conversation_id, **a} for a in reply.messages]
        return web.json_response(answers, status=status)


def build_chat(rasa_url: str, data_dir, origins: list[str], redis_url: str | None = None) -> ChatServer:
    """The composition of the web channels: Rasa on loopback, the engine, limits, the recorder."""
    from pathlib import Path

    from bot import settings as settings_mod
    from bot.channels.core import limits
    from bot.channels.core.rasa import RasaClient
    from bot.channels.core.spool import Spool
    from bot.channels.core.staff_warning import telegram_staff_warning
    from bot.channels.telegram.identity import load_secret
    from bot.triage import engine

    cfg = settings_mod.get()
    spool = Spool(
        Path(data_dir) / "spool",
        warn=telegram_staff_warning(cfg.telegram_bot_token, cfg.telegram_staff_chat_id, cfg.telegram_api_base_url),
    )
    recorder = escalation_recorder({"web": "the clinic's web chat page", "rest": "a REST integration"}, spool)
    gateway = PatientGateway(
        RasaClient(rasa_url),
        engine=engine,
        recorder=recorder,
        sender_limit=limits.limiter(redis_url, 8, 10),
        address_limit=limits.limiter(redis_url, 120, 60),
    )
    chat = ChatServer(
        gateway, SessionTokens(load_secret(data_dir)), origins, forgetter=web_forgetter(rasa_url, data_dir)
    )
    chat.spool, chat.replay_commit = spool, recorder.commit
    return chat


def web_forgetter(rasa_url: str, data_dir):
    """Forget a web conversation: Rasa's tracker emptied (HTTP API, with the JWT) and its stored
    events deleted, the patient rows deleted and audited; True when Rasa holds nothing more."""
    import asyncio

    from bot import patients
    from bot.channels.core.rasa import RasaClient, RasaUnavailable
    from bot.privacy import forget_rasa_conversation
    from bot.service_auth import rasa_secret

    async def forget(conversation_id: str) -> bool:
        client = RasaClient(rasa_url, token=rasa_secret(data_dir), timeout=10)
        cleared = False
        try:
            await client.replace_tracker(conversation_id, [])
            try:
                await asyncio.to_thread(forget_rasa_conversation, conversation_id)
            except Exception as e:  # noqa: BLE001 - remaining_messages tells the truth
                log.error("could not delete Rasa's stored events: %s", type(e).__name__)
            cleared = await client.remaining_messages(conversation_id) == 0
        except RasaUnavailable as e:
            log.warning("could not empty Rasa's tracker: %s", e)
        finally:
            await client.close()
        try:
            await asyncio.to_thread(patients.forget, conversation_id, "web", None, {"rasa_tracker_cleared": cleared})
        except Exception as e:  # noqa: BLE001 - the page is still cleared; reported
            log.error("could not record the forget: %s", type(e).__name__)
            return False
        return cleared

    return forget
