"""Composition root: builds the long-running workers from settings (the only place that joins the
escalation package with the channels)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from bot import settings as settings_mod
from bot.escalation import get_service
from bot.escalation.relay import OutboxRelay
from bot.store.db import default as default_db

log = logging.getLogger(__name__)


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


class DashboardTarget:
    """The target that needs no configuration: the nurses' dashboard reads escalations from the
    database (and raises its alarm from its live feed), so an alert is 'sent' once committed."""

    bot = None
    target_name = "dashboard"
    max_per_minute = None

    async def send_alert(self, view) -> dict:
        return {"target": "dashboard"}

    async def update_alert(self, ref, view) -> None:
        return None

    async def send_digest(self, views) -> dict:
        return {"target": "dashboard", "digest": len(views)}


def staff_targets(cfg) -> dict:
    """The registry of alert targets, from clinic.yml `escalation.targets` and the settings each
    needs (bot.settings.Settings.staff_targets): Telegram, email, and always the dashboard."""
    limits = cfg.alerting.max_alerts_per_minute
    targets: dict = {}
    for name in cfg.staff_targets():
        if name == "telegram":
            from bot.channels.telegram.api import make_bot
            from bot.channels.telegram.staff import TelegramStaffNotifier

            targets[name] = TelegramStaffNotifier(
                make_bot(cfg.telegram_bot_token, cfg.telegram_api_base_url),
                cfg.telegram_staff_chat_id,
                limits.get("telegram"),
                cfg.alerting.dashboard_url,
            )
        elif name == "email":
            from bot.channels.email import EmailNotifier

            targets[name] = EmailNotifier(cfg.smtp, cfg.clinic.name, cfg.alerting.dashboard_url, limits.get("email"))
        else:
            targets[name] = DashboardTarget()
    return targets


def build_relay(patient_notifier=None, run_timers: bool = False) -> OutboxRelay:
    """The outbox relay over every configured target. The timers run in their own worker
    (`python -m bot timers`), which the supervisor always starts."""
    cfg = settings_mod.get()
    db = default_db()
    return OutboxRelay(
        db.sessions,
        get_service(),
        staff_targets(cfg),
        patient=patient_notifier,
        is_postgres=db.is_postgres,
        run_timers=run_timers,
        lease_seconds=cfg.relay.lease_seconds,
        backoff_base=cfg.relay.backoff_base,
        pause_before_send=cfg.relay.pause_before_send,
    )


async def run_timers(poll_seconds: float = 1.0, purge_every: float = 24 * 3600) -> None:
    """Re-alerts of unacknowledged escalations and 'please call us directly' notices: due times
    live in the database, so this worker can restart or run twice without losing or doubling.
    It also applies the retention periods, at start and once a day (python -m bot purge)."""
    service = get_service()
    stop = _stop_event()
    log.info("escalation timers running")
    last_purge = 0.0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            await asyncio.to_thread(service.tick)
        except Exception:  # a database outage: the next round retries
            log.exception("escalation timers failed; retrying")
        if loop.time() - last_purge >= purge_every or last_purge == 0.0:
            last_purge = loop.time()
            try:
                await asyncio.to_thread(_purge_now)
            except Exception:  # reported; tomorrow's run tries again
                log.exception("retention purge failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
        except asyncio.TimeoutError:
            pass


def _purge_now() -> None:
    from bot import privacy
    from bot.store.retention import purge

    cfg = settings_mod.get()
    done = purge(default_db().sessions, cfg.retention, cfg.data_dir / "archive", tracker_purge=_tracker_purge(privacy))
    log.info("retention purge: %s", ", ".join(f"{k} {v}" for k, v in done.counts.items()))


def _tracker_purge(privacy):
    """Rasa's tracker store when it is an SQL store (else nothing to purge there)."""
    return privacy.purge_rasa_conversations if privacy.tracker_store_url() is not None else None


def _quiet_http_logs() -> None:
    """httpx logs every request URL at INFO, and Bot API URLs hold the bot token."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def patient_notifiers(bot, rasa_url: str | None = None, sessions=None):
    """'Call us directly' notices: Telegram patients by Telegram (when there is a bot), the others
    through Rasa and, for an open web page, the web app."""
    from bot.channels.rasa_api import PatientNotifiers, RasaPatientNotifier
    from bot.service_auth import rasa_secret

    rasa = RasaPatientNotifier(
        rasa_url or os.environ.get("RASA_URL", "http://localhost:5005"),
        token=rasa_secret(settings_mod.get().data_dir),
        web_url=os.environ.get("HSG_WEB_URL", "http://127.0.0.1:8080"),
    )
    if bot is None:
        return PatientNotifiers(rasa)
    from bot.channels.telegram.notifier import TelegramPatientNotifier

    return PatientNotifiers(rasa, by_channel={"telegram": TelegramPatientNotifier(bot, sessions)})


async def run_relay(patient_notifier=None) -> None:
    _quiet_http_logs()
    relay = build_relay(patient_notifier)
    bot = getattr(relay.targets.get("telegram"), "bot", None)
    if patient_notifier is None:
        relay.patient = patient_notifiers(bot)
    if bot is not None:
        await bot.initialize()
    stop = _stop_event()
    log.info("outbox relay running (targets: %s)", ", ".join(relay.targets))
    try:
        await relay.run_forever(stop)
    finally:
        if bot is not None:
            await bot.shutdown()


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
    app = build_application(
        cfg.telegram_bot_token, get_service(), cfg.telegram_staff_chat_id, cfg.telegram_api_base_url, gateway=gateway
    )
    stop = _stop_event()
    async with app:
        if gateway is not None:
            await gateway.start()
        await app.start()
        try:
            if webhook is None:
                updater = app.updater
                assert updater is not None, "build_application builds the Application with an Updater"
                await updater.start_polling(allowed_updates=ALLOWED_UPDATES)
                log.info("telegram polling")
                await stop.wait()
                await updater.stop()
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
