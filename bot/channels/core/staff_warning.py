"""A warning to the clinic's staff that does not go through the database: when escalations are
being spooled because the database is down, the staff chat hears of it directly (no patient data:
only that the database is unavailable and how many escalations wait)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
TEXT = (
    "Warning from the HSG aftercare assistant: the clinic's database is unavailable. "
    "{n} escalation(s) are held on the web server and will reach the dashboard when it is back. "
    "Meanwhile, patients with warning signs are told to call the clinic directly."
)


def telegram_staff_warning(
    token: str | None, chat_id: str | None, base_url: str | None = None, every: float = 300
) -> Callable[[int], None] | None:
    """A warner that posts to the staff chat at most once per `every` seconds (None: not configured)."""
    if not token or not chat_id:
        return None
    last = [0.0]

    def warn(pending: int) -> None:
        if time.monotonic() - last[0] < every:
            return
        last[0] = time.monotonic()
        from bot.channels.telegram.api import make_bot

        async def send() -> None:
            bot = make_bot(token, base_url)
            async with bot:
                await bot.send_message(chat_id, TEXT.format(n=pending))

        try:
            asyncio.run(send())
        except Exception as e:  # noqa: BLE001 - the ERROR log is the last path
            log.error("could not warn the staff chat that the database is down: %s", type(e).__name__)

    return warn
