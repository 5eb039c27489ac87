"""The escalation timers reaching a Telegram patient: "nobody has picked up yet, call directly".

The relay (bot.escalation.relay) calls notify_patient for a 'patient_notice' outbox row; the chat
is found through bot.patients (the contact stored at consent). The wording is Rasa's
own answer to the timer's external intent (domain.yml utter_call_clinic_directly), so web and
Telegram patients read the same words. Outbox results never hold the chat id.
"""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache
from typing import Any

import yaml
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot import conversation, patients, settings
from bot.escalation.relay import AlertView, PermanentError

from . import format as fmt
from .api import classify

log = logging.getLogger(__name__)
RESPONSE = "utter_call_clinic_directly"
DEFAULT = (
    "The clinic's nurses haven't picked up my alert yet. Please don't wait: call the clinic now on "
    "{clinic_phone} (out of hours {clinic_out_of_hours_phone}). If you feel worse, faint or struggle "
    "to breathe, call {emergency_number}."
)


@lru_cache(maxsize=1)
def _template() -> str:
    try:
        with open(settings.ROOT / "domain.yml", encoding="utf-8") as f:
            variants = ((yaml.safe_load(f) or {}).get("responses") or {}).get(RESPONSE) or []
        return str(variants[0]["text"])
    except (OSError, LookupError, TypeError, yaml.YAMLError):
        log.warning("domain.yml has no %s; using the built-in wording", RESPONSE)
        return DEFAULT


def notice_text() -> str:
    return conversation.render(_template())


class TelegramPatientNotifier:
    def __init__(self, bot, sessions=None):
        self.bot = bot
        self.sessions = sessions

    async def notify_patient(self, view: AlertView) -> dict[str, Any]:
        contact: patients.Contact | None = await asyncio.to_thread(patients.lookup, view.conversation_id, self.sessions)
        if contact is None or contact.channel != patients.TELEGRAM or not contact.consented:
            raise PermanentError("no Telegram contact for this conversation (forgotten, or never consented)")
        messages = fmt.to_html(notice_text())
        sent = []
        try:
            for html in messages:
                msg = await self.bot.send_message(int(contact.address), html, parse_mode=ParseMode.HTML)
                sent.append(msg.message_id)
        except TelegramError as e:
            raise classify(e) from e
        return {"delivered_via": "telegram", "message_ids": sent}
