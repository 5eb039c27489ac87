"""Reaching a patient through Rasa itself (web chat and REST conversations).

The escalation timers sometimes need to tell a patient "nobody has picked this up yet: please
call us directly". For conversations that live in Rasa's own channels, Rasa's HTTP API triggers
an external intent in the conversation; its rule answers on the patient's latest channel
(socket.io pushes it to the open page; REST conversations see it in their tracker).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from bot.escalation.relay import AlertView, PermanentError, TransientError
from bot.service_auth import rasa_api_headers

EXTERNAL_INTENT = "EXTERNAL_unacknowledged"


class RasaPatientNotifier:
    def __init__(self, rasa_url: str, token: str | None = None, timeout: float = 20, web_url: str | None = None):
        self.rasa_url = rasa_url.rstrip("/")
        self.token = token
        self.web_url = (web_url or "").rstrip("/")  # web conversations: the notice goes to the open page
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def notify_patient(self, view: AlertView) -> dict[str, Any]:
        url = (
            f"{self.rasa_url}/conversations/{quote(view.conversation_id, safe='')}/trigger_intent?output_channel=latest"
        )
        body = {"name": EXTERNAL_INTENT, "entities": {"escalation_ref": view.id}}
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as http:
                async with http.post(url, json=body, headers=rasa_api_headers(self.token)) as r:
                    if r.status >= 500:
                        raise TransientError(f"Rasa answered {r.status}")
                    if r.status >= 400:
                        raise PermanentError(f"Rasa refused the notice: {r.status} {(await r.text())[:200]}")
                    answer = await r.json(content_type=None)
                if self.web_url and view.conversation_id.startswith("web-"):
                    # the web page's channel is the web app's, not Rasa's: Rasa returns the notice,
                    # the web app pushes it into the open page
                    async with http.post(
                        f"{self.web_url}/internal/push",
                        headers={"Authorization": f"Bearer {self.token}"},
                        json={
                            "conversation_id": view.conversation_id,
                            "messages": (answer or {}).get("messages") or [],
                        },
                    ) as pushed:
                        if pushed.status >= 400:
                            raise TransientError(f"the web app refused the notice: {pushed.status}")
        except aiohttp.ClientError as e:
            raise TransientError(f"Rasa unreachable: {e}") from e
        return {"delivered_via": "rasa", "intent": EXTERNAL_INTENT}


class PatientNotifiers:
    """Chooses the notifier for the patient's channel (Telegram patients get a Telegram message)."""

    def __init__(self, default, by_channel: dict[str, Any] | None = None):
        self.default = default
        self.by_channel = by_channel or {}

    async def notify_patient(self, view: AlertView) -> dict[str, Any]:
        channel = (view.contact or {}).get("channel")
        # by_channel's keys are channel names: a contact without one gets the default, as before
        notifier = self.by_channel.get(channel, self.default) if channel is not None else self.default
        return await notifier.notify_patient(view)
