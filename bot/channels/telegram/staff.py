"""Nurses' staff chat: alerts with Acknowledge / Resolve buttons, and what happens when pressed.

Alerts are sent by the outbox relay through TelegramStaffNotifier; the buttons' callbacks arrive
in the Telegram application (app.py), where `handle_staff_button` checks the presser against the
staff roster (callback data is untrusted: parsed strictly, never trusted for identity) and asks
the escalation service to act; the service queues an 'update' that the relay turns into an edit.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.escalation.relay import AlertView
from bot.escalation.service import Escalations

from .api import classify

log = logging.getLogger(__name__)
CALLBACK = re.compile(r"(ack|res):(H-[A-Z0-9]{6})")
LEVEL_MARK = {"emergency": "🔴 EMERGENCY", "urgent": "🟠 URGENT"}
KIND_PREFIX = {"alert": "", "realert": "⬆️ LEVEL RAISED · ", "resend": "⏰ NOT ACKNOWLEDGED · "}
MAX_WORDS_SHOWN = 3
DIGEST_REFS_SHOWN = 40


def _t(value: Any) -> str:
    return html.escape(str(value), quote=False)


def format_alert(view: AlertView) -> str:
    """The staff message, HTML with every patient-sourced string escaped."""
    lines = [
        f"<b>{KIND_PREFIX.get(view.kind, '')}{LEVEL_MARK.get(view.level, view.level.upper())}</b> "
        f"· ref <code>{_t(view.id)}</code>"
    ]
    lines.append(f"<b>What:</b> {_t(view.summary or 'see findings')}")
    if view.days_since_procedure is not None:
        lines.append(f"<b>Days since the HSG:</b> {view.days_since_procedure:g}")
    for w in view.patient_words[-MAX_WORDS_SHOWN:]:
        text = str(w.get("text", ""))
        lines.append(f"<b>Patient wrote:</b> “{_t(text[:400])}{'…' if len(text) > 400 else ''}”")
    if view.reasons:
        lines.append("<b>Why:</b> " + _t("; ".join(view.reasons[:4])))
    contact = view.contact or {}
    lines.append(
        f"<b>Reach the patient:</b> {_t(contact.get('how', 'via the conversation'))} "
        f"(conversation <code>{_t(view.conversation_id[:12])}</code>)"
    )
    if view.status == "resolved":
        lines.append(
            f"✅ <b>Resolved</b> by {_t(view.resolved_by or '?')} at {view.resolved_at:%H:%M} UTC"
            + (f": {_t(view.resolution_note)}" if view.resolution_note else "")
        )
    elif view.status == "acknowledged":
        lines.append(f"👍 <b>Acknowledged</b> by {_t(view.acknowledged_by or '?')} at {view.acknowledged_at:%H:%M} UTC")
    else:
        lines.append(f"⏳ Waiting for acknowledgement (raised {view.created_at:%H:%M} UTC)")
    return "\n".join(lines)


def buttons(view: AlertView) -> InlineKeyboardMarkup | None:
    if view.status == "resolved":
        return None
    row: list[InlineKeyboardButton] = []
    if view.status != "acknowledged":
        row.append(InlineKeyboardButton("Acknowledge", callback_data=f"ack:{view.id}"))
    row.append(InlineKeyboardButton("Resolve", callback_data=f"res:{view.id}"))
    return InlineKeyboardMarkup([row])


def format_digest(views: list[AlertView], dashboard_url: str) -> str:
    """One message for a flood of urgent alerts: references only, the dashboard has the rest."""
    refs = [v.id for v in views]
    shown = ", ".join(f"<code>{_t(r)}</code>" for r in refs[:DIGEST_REFS_SHOWN])
    more = f" and {len(refs) - DIGEST_REFS_SHOWN} more" if len(refs) > DIGEST_REFS_SHOWN else ""
    return (
        f"<b>🟠 {len(refs)} new urgent escalation{'s' if len(refs) != 1 else ''}</b>: open the dashboard "
        f"to acknowledge them.\n{shown}{more}\n{_t(dashboard_url)}"
    )


class TelegramStaffNotifier:
    target_name = "telegram"

    def __init__(self, bot, staff_chat_id: int | str, max_per_minute: int | None = 20, dashboard_url: str = ""):
        self.bot = bot
        self.chat_id = staff_chat_id
        self.max_per_minute = max_per_minute
        self.dashboard_url = dashboard_url

    async def send_digest(self, views: list[AlertView]) -> dict[str, Any]:
        try:
            msg = await self.bot.send_message(self.chat_id, format_digest(views, self.dashboard_url), parse_mode="HTML")
        except TelegramError as e:
            raise classify(e) from e
        return {"digest": len(views), "message_id": msg.message_id}

    async def send_alert(self, view: AlertView) -> dict[str, Any]:
        try:
            msg = await self.bot.send_message(
                self.chat_id, format_alert(view), parse_mode="HTML", reply_markup=buttons(view)
            )
        except TelegramError as e:
            raise classify(e) from e
        return {"chat_id": msg.chat_id, "message_id": msg.message_id}

    async def update_alert(self, ref: dict[str, Any], view: AlertView) -> None:
        try:
            await self.bot.edit_message_text(
                format_alert(view),
                chat_id=ref["chat_id"],
                message_id=ref["message_id"],
                parse_mode="HTML",
                reply_markup=buttons(view),
            )
        except BadRequest as e:
            if "not modified" in str(e).lower():
                return
            raise classify(e) from e
        except TelegramError as e:
            raise classify(e) from e


async def handle_staff_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Acknowledge / Resolve pressed in the staff chat."""
    service: Escalations = context.bot_data["escalations"]
    staff_chat_id = context.bot_data.get("staff_chat_id")
    query = update.callback_query
    assert query is not None  # registered as a CallbackQueryHandler: only callback queries come here
    user_id = query.from_user.id if query.from_user else None
    match = CALLBACK.fullmatch(query.data or "")
    chat_id = query.message.chat.id if query.message else None
    if not match or (staff_chat_id is not None and str(chat_id) != str(staff_chat_id)):
        await asyncio.to_thread(service.refuse_button, user_id, str(query.data), str(chat_id))
        await query.answer("That button is not valid here.", show_alert=True)
        return
    action, escalation_id = match.groups()
    act = service.acknowledge if action == "ack" else service.resolve
    result = await asyncio.to_thread(act, escalation_id, None, "telegram", None, user_id)
    log.info("staff button %s on %s by telegram user %s: %s", action, escalation_id, user_id, result.status)
    await query.answer(result.message, show_alert=not result.ok)
