"""The Telegram application: one bot, one stream of updates.

Telegram gives a bot's updates to one consumer only, so the nurses' buttons (staff chat) and the
patients' private chats (gateway.py) are handled by this one python-telegram-bot Application.

Updates of different chats are handled concurrently (a patient waiting for Rasa does not hold up
the others); updates of one chat are handled one at a time, in the order they arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, BaseUpdateProcessor, CallbackQueryHandler

from bot.escalation.service import Escalations

from .api import make_bot
from .staff import handle_staff_button

MAX_CONCURRENT_UPDATES = 256
# the update kinds the handlers use (polling and webhook); channel posts get "private chats only"
ALLOWED_UPDATES = ["message", "edited_message", "channel_post", "callback_query"]


class PerChatOrder(BaseUpdateProcessor):
    """Concurrent across chats, sequential (in arrival order) within a chat."""

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES):
        super().__init__(max_concurrent_updates)
        self._locks: dict[Any, asyncio.Lock] = {}
        self._waiting: dict[Any, int] = {}

    @staticmethod
    def key(update: object) -> Any | None:
        if isinstance(update, Update):
            if update.effective_chat is not None:
                return update.effective_chat.id
            if update.effective_user is not None:
                return ("user", update.effective_user.id)
        return None

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = self.key(update)
        if key is None:
            await coroutine
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                self._locks.pop(key, None)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


def build_application(
    token: str, escalations: Escalations, staff_chat_id: str | None, base_url: str | None = None, gateway=None
) -> Application:
    app = ApplicationBuilder().bot(make_bot(token, base_url)).concurrent_updates(PerChatOrder()).build()
    app.bot_data["escalations"] = escalations
    app.bot_data["staff_chat_id"] = staff_chat_id
    app.add_handler(CallbackQueryHandler(handle_staff_button, pattern=r"^(ack|res):"))
    if gateway is not None:
        gateway.register(app)
    return app
