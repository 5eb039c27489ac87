"""Webhook mode (production, behind a TLS-terminating proxy): Telegram POSTs updates to us.

- The POST handler checks Telegram's X-Telegram-Bot-Api-Secret-Token header against
  TELEGRAM_WEBHOOK_SECRET in constant time: 403 without it or when wrong (nothing stored).
- A good update is stored in the database inbox (bot.patients, deduplicated by
  update_id) and committed BEFORE Telegram gets its 200; a second delivery of the same update_id
  is acknowledged but not processed again. If the database is down Telegram gets a 500 and
  delivers again later.
- A worker processes stored, unprocessed updates in update_id order through the PTB Application
  (concurrently across chats, in order within a chat) and marks them processed; on start it
  processes whatever an earlier process stored but never processed (a crash loses nothing).
- setWebhook is called with the secret and the update kinds the bot handles.

Settings: TELEGRAM_WEBHOOK_URL (the public https URL Telegram posts to; its path is served),
TELEGRAM_WEBHOOK_SECRET (required; 1-256 of A-Z a-z 0-9 _ -), TELEGRAM_WEBHOOK_LISTEN
(host:port, default 127.0.0.1:8443).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import ipaddress
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application

from bot.store import telegram_inbox as inbox

from .app import ALLOWED_UPDATES

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
DEFAULT_LISTEN = "127.0.0.1:8443"


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: str
    host: str = "127.0.0.1"
    port: int = 8443

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WebhookConfig:
        url = (environ.get("TELEGRAM_WEBHOOK_URL") or "").strip()
        secret = environ.get("TELEGRAM_WEBHOOK_SECRET") or ""
        listen = (environ.get("TELEGRAM_WEBHOOK_LISTEN") or DEFAULT_LISTEN).strip()
        if not url:
            raise ValueError("TELEGRAM_WEBHOOK_URL is not set (the public https URL Telegram posts to)")
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.hostname)):
            raise ValueError("TELEGRAM_WEBHOOK_URL must be an https URL (Telegram posts only over TLS)")
        if not secret:
            raise ValueError("TELEGRAM_WEBHOOK_SECRET is required in webhook mode")
        if not SECRET_RE.match(secret):
            raise ValueError("TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ -")
        host, port = parse_listen(listen)
        return cls(url=url, secret=secret, host=host, port=port)


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def parse_listen(value: str):
    m = re.fullmatch(r"\[?([^\]]*?)\]?:(\d{1,5})", value)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise ValueError(f"TELEGRAM_WEBHOOK_LISTEN must be host:port, not {value!r}")
    return m.group(1) or "127.0.0.1", int(m.group(2))


class WebhookServer:
    def __init__(
        self,
        app: Application,
        config: WebhookConfig,
        sessions=None,
        retention: dt.timedelta = dt.timedelta(days=2),
        max_attempts: int = 5,
        poll_seconds: float = 5.0,
    ):
        self.app = app
        self.config = config
        self.sessions = sessions
        self.retention = retention
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self._secret = config.secret.encode("utf-8")
        self._runner: web.AppRunner | None = None
        self._worker: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: set[int] = set()
        self._tasks: set[asyncio.Task] = set()
        self.port: int | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, set_webhook: bool = True) -> None:
        web_app = web.Application(client_max_size=2 * 1024 * 1024)
        web_app.router.add_post(self.config.path, self.handle)
        web_app.router.add_get("/healthz", self.health)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []  # the port when 0 was asked for
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port
        self._worker = asyncio.create_task(self._work())
        log.info("telegram webhook listening on %s:%s%s", self.config.host, self.port, self.config.path)
        if set_webhook:
            await self.set_webhook()

    async def set_webhook(self) -> None:
        for attempt in range(1, 4):
            try:
                await self.app.bot.set_webhook(
                    self.config.url,
                    secret_token=self.config.secret,
                    allowed_updates=ALLOWED_UPDATES,
                    drop_pending_updates=False,
                )
                log.info("telegram webhook set")
                return
            except TelegramError as e:
                log.error("setWebhook failed (attempt %d): %s", attempt, type(e).__name__)
                await asyncio.sleep(2 * attempt)
        log.error("setWebhook failed; serving anyway (Telegram keeps an earlier webhook)")

    async def stop(self, grace: float = 15.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._worker is not None:
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- HTTP ----------------------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8")
        if not hmac.compare_digest(given, self._secret):
            log.warning("webhook call refused: %s secret token", "wrong" if given else "no")
            return web.Response(status=403, text="forbidden")
        try:
            payload = json.loads(await request.read())
            update_id = payload["update_id"]
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                raise TypeError("update_id")
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="not an update")
        try:
            new = await asyncio.to_thread(inbox.store_update, update_id, payload, self.sessions)
        except Exception:
            log.exception("could not store update %s; Telegram will deliver it again", update_id)
            return web.Response(status=500, text="not stored")
        if new:
            self._wake.set()
        else:
            log.info("update %s delivered again; already stored", update_id)
        return web.Response(status=200)

    # -- processing ----------------------------------------------------------------------------
    async def _work(self) -> None:
        last_prune = None
        while not self._stopping:
            self._wake.clear()
            try:
                rows = await asyncio.to_thread(
                    inbox.pending_updates, 50, set(self._inflight), self.max_attempts, self.sessions
                )
            except Exception:
                log.exception("could not read stored updates; retrying")
                rows = []
            for update_id, payload in rows:
                self._inflight.add(update_id)
                task = asyncio.create_task(self._process(update_id, payload))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            now = dt.datetime.utcnow()
            if last_prune is None or now - last_prune > dt.timedelta(hours=1):
                last_prune = now
                try:
                    pruned = await asyncio.to_thread(inbox.prune_updates, self.retention, self.sessions)
                    if pruned:
                        log.info("pruned %d processed updates", pruned)
                except Exception:
                    log.exception("could not prune stored updates")
            if len(rows) == 50:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except asyncio.TimeoutError:
                pass

    async def _process(self, update_id: int, payload: dict) -> None:
        try:
            update = Update.de_json(payload, self.app.bot)
            await self.app.update_processor.process_update(update, self.app.process_update(update))
        except Exception as e:  # handler errors go to the app's error handler; this is the rest
            try:
                attempts = await asyncio.to_thread(
                    inbox.record_update_failure, update_id, self.max_attempts, self.sessions
                )
            except Exception:
                attempts = -1
            log.error("update %s not processed (%s, attempt %s)", update_id, type(e).__name__, attempts)
        else:
            try:
                await asyncio.to_thread(inbox.mark_update_processed, update_id, self.sessions)
            except Exception:
                log.exception("update %s processed but not marked; it may be processed again", update_id)
        finally:
            self._inflight.discard(update_id)
