"""Composition root: builds the long-running workers from settings (the only place that joins the
escalation package with the channels)."""
from __future__ import annotations

import asyncio
import logging
import os
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


def _quiet_http_logs() -> None:
    """httpx logs every request URL at INFO, and Bot API URLs hold the bot token."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def patient_notifiers(bot, rasa_url: Optional[str] = None, sessions=None):
    """'Call us directly' notices: Telegram patients by Telegram, the others through Rasa."""
    from bot.channels.rasa_api import PatientNotifiers, RasaPatientNotifier
    from bot.channels.telegram.notifier import TelegramPatientNotifier

    from bot.service_auth import rasa_secret

    rasa = RasaPatientNotifier(rasa_url or os.environ.get("RASA_URL", "http://localhost:5005"),
                               token=rasa_secret(settings_mod.get().data_dir),
                               web_url=os.environ.get("HSG_WEB_URL", "http://127.0.0.1:8080"))
    return PatientNotifiers(rasa, by_channel={"telegram": TelegramPatientNotifier(bot, sessions)})


async def run_relay(patient_notifier=None) -> None:
    _quiet_http_logs()
    relay = build_relay(patient_notifier)
    if patient_notifier is None:
        relay.patient = patient_notifiers(relay.staff.bot)
    await relay.staff.bot.initialize()
    stop = _stop_event()
    log.info("outbox relay running")
    try:
        await relay.run_forever(stop)
    finally:
        await relay.staff.bot.shutdown()


def build_gateway(rasa_url: str):
    """The patients' Telegram gateway: Rasa's REST channel at rasa_url, opaque ids from the secret."""
    from bot.channels.telegram.gateway import PatientGateway
    from bot.channels.telegram.identity import load_secret

    cfg = settings_mod.get()
    from bot.service_auth import rasa_secret

    return PatientGateway(rasa_url, load_secret(cfg.data_dir), rasa_token=rasa_secret(cfg.data_dir))


async def run_telegram(gateway=None, webhook=None) -> None:
    """The Telegram bot: staff buttons and (with a gateway) patients' chats. Long polling, or with
    webhook (a bot.channels.telegram.webhook.WebhookConfig) the webhook server."""
    cfg = settings_mod.get()
    if not cfg.telegram_bot_token:
        raise SystemExit("TELEGRAM_BOT_TOKEN is not set")
    from bot.channels.telegram.app import ALLOWED_UPDATES, build_application

    _quiet_http_logs()
    app = build_application(cfg.telegram_bot_token, get_service(), cfg.telegram_staff_chat_id,
                            cfg.telegram_api_base_url, gateway=gateway)
    stop = _stop_event()
    async with app:
        if gateway is not None:
            await gateway.start()
        await app.start()
        try:
            if webhook is None:
                await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
                log.info("telegram polling")
                await stop.wait()
                await app.updater.stop()
            else:
                from bot.channels.telegram.webhook import WebhookServer

                server = WebhookServer(app, webhook)
                await server.start()
                await stop.wait()
                await server.stop()
        finally:
            await app.stop()
            if gateway is not None:
                await gateway.close()
