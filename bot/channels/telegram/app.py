"""The Telegram application: one bot, one stream of updates.

Telegram gives a bot's updates to one consumer only, so the nurses' buttons (staff chat) and the
patients' private chats (gateway.py) are handled by this one python-telegram-bot Application.
"""
from __future__ import annotations

from typing import Optional

from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler

from bot.escalation.service import Escalations

from .api import make_bot
from .staff import handle_staff_button


def build_application(token: str, escalations: Escalations, staff_chat_id: Optional[str],
                      base_url: Optional[str] = None, gateway=None) -> Application:
    app = ApplicationBuilder().bot(make_bot(token, base_url)).build()
    app.bot_data["escalations"] = escalations
    app.bot_data["staff_chat_id"] = staff_chat_id
    app.add_handler(CallbackQueryHandler(handle_staff_button, pattern=r"^(ack|res):"))
    if gateway is not None:
        gateway.register(app)
    return app
