"""Composition root: builds the long-running workers from settings (the only place that joins the
escalation package with the channels)."""
from __future__ import annotations

import asyncio
import logging
import signal
from typing import Optional

from bot import settings as settings_mod
from bot.escalation import get_service
from bot.escalation.db import default as default_db
from bot.escalation.relay import OutboxRelay

log = logging.getLogger(__name__)


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def build_relay(patient_notifier=None) -> OutboxRelay:
    cfg = settings_mod.get()
    if not (cfg.telegram_bot_token and cfg.telegram_staff_chat_id):
        raise SystemExit("the relay needs TELEGRAM_BOT_TOKEN and TELEGRAM_STAFF_CHAT_ID; without them "
                         "escalations are still recorded and shown on the dashboard")
    from bot.channels.telegram.api import make_bot
    from bot.channels.telegram.staff import TelegramStaffNotifier

    bot = make_bot(cfg.telegram_bot_token, cfg.telegram_api_base_url)
    db = default_db()
    return OutboxRelay(db.sessions, get_service(), TelegramStaffNotifier(bot, cfg.telegram_staff_chat_id),
                       patient=patient_notifier, is_postgres=db.is_postgres)


async def run_relay(patient_notifier=None) -> None:
    if patient_notifier is None:
        import os

        from bot.channels.rasa_api import PatientNotifiers, RasaPatientNotifier
        rasa = RasaPatientNotifier(os.environ.get("RASA_URL", "http://localhost:5005"),
                                   token=os.environ.get("RASA_AUTH_TOKEN"))
        patient_notifier = PatientNotifiers(rasa)
    relay = build_relay(patient_notifier)
    await relay.staff.bot.initialize()
    stop = _stop_event()
    log.info("outbox relay running")
    try:
        await relay.run_forever(stop)
    finally:
        await relay.staff.bot.shutdown()


async def run_telegram(gateway=None) -> None:
    """Long polling: staff buttons (and, with a gateway, patients' chats)."""
    cfg = settings_mod.get()
    if not cfg.telegram_bot_token:
        raise SystemExit("TELEGRAM_BOT_TOKEN is not set")
    from bot.channels.telegram.app import build_application

    app = build_application(cfg.telegram_bot_token, get_service(), cfg.telegram_staff_chat_id,
                            cfg.telegram_api_base_url, gateway=gateway)
    stop = _stop_event()
    async with app:
        await app.start()
        await app.updater.start_polling(allowed_updates=["message", "edited_message", "callback_query"])
        log.info("telegram polling")
        await stop.wait()
        await app.updater.stop()
        await app.stop()
