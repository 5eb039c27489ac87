"""The one client of Rasa our channels use: its REST channel for patients' messages (the channel
label is the gateway's) and its HTTP API, with the JWT header, for forgetting a conversation."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.service_auth import rasa_api_headers


class RasaUnavailable(Exception):
    """Rasa could not be reached or answered with an error (the gateway answers locally)."""


class RasaClient:
    def __init__(self, rasa_url: str, token: str | None = None, timeout: float = 60) -> None:
        if not rasa_url.startswith(("http://", "https://")):
            raise ValueError(f"the Rasa URL must be http(s), not {rasa_url!r}")
        self.rasa_url = rasa_url.rstrip("/")
        self._auth = rasa_api_headers(token)  # token: the HTTP API's JWT secret (None: a test server)
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=2)
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self.timeout)
        return self._http

    async def close(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()
        self._http = None

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; its JSON answer. Anything but 200 is RasaUnavailable."""
        try:
            async with self._session().request(method, f"{self.rasa_url}{path}", **kwargs) as r:
                if r.status != 200:
                    raise RasaUnavailable(f"Rasa answered {r.status}")
                return await r.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            raise RasaUnavailable(type(e).__name__) from e

    async def send(self, sender: str, text: str, channel: str) -> list[dict[str, Any]]:
        """The patient's message through the REST channel; Rasa's answers (texts, buttons, custom).
        The channel label goes in metadata and input_channel, so actions record it (not "rest")."""
        body = {"sender": sender, "message": text, "metadata": {"channel": channel}, "input_channel": channel}
        answers = await self._call("POST", "/webhooks/rest/webhook", json=body)
        if not isinstance(answers, list):
            raise RasaUnavailable("Rasa's answer is not a list")
        return [a for a in answers if isinstance(a, dict)]

    async def replace_tracker(self, conversation_id: str, events: list[dict[str, Any]] | None = None) -> None:
        """PUT the conversation's events (default []: the tracker emptied)."""
        await self._call(
            "PUT",
            f"/conversations/{quote(conversation_id, safe='')}/tracker/events",
            json=events or [],
            headers=self._auth,
        )

    async def remaining_messages(self, conversation_id: str) -> int:
        """How many patient and bot messages Rasa still holds for the conversation (all sessions).
        (Reading an empty tracker makes Rasa start a session in memory; those events don't count.)"""
        tracker = await self._call(
            "GET",
            f"/conversations/{quote(conversation_id, safe='')}/tracker",
            params={"include_events": "ALL"},
            headers=self._auth,
        )
        events = (tracker or {}).get("events") or []
        return sum(1 for e in events if isinstance(e, dict) and e.get("event") in ("user", "bot"))
