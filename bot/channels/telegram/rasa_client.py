"""The gateway's calls to Rasa: the REST channel for messages, the HTTP API for /forget."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import aiohttp

from bot.service_auth import rasa_api_headers


class RasaUnavailable(Exception):
    """Rasa could not be reached or answered with an error (the gateway answers locally)."""


class RasaClient:
    def __init__(self, rasa_url: str, token: Optional[str] = None, timeout: float = 30,
                 input_channel: str = "telegram"):
        if not rasa_url.startswith(("http://", "https://")):
            raise ValueError(f"--rasa-url must be an http(s) URL, not {rasa_url!r}")
        self.rasa_url = rasa_url.rstrip("/")
        self.token = token              # the HTTP API's JWT secret (None: an unprotected test server)
        self._auth = rasa_api_headers(token)
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=5)
        self.input_channel = input_channel
        self._http: Optional[aiohttp.ClientSession] = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self.timeout)
        return self._http

    async def close(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()
        self._http = None

    async def send(self, sender: str, text: str) -> List[Dict[str, Any]]:
        """The patient's message through the REST channel; Rasa's answers (texts, buttons, custom)."""
        body = {"sender": sender, "message": text, "metadata": {"channel": self.input_channel},
                # the REST channel takes the channel name from here: actions record "telegram"
                # (so the escalation timers reach the patient here), not "rest"
                "input_channel": self.input_channel}
        try:
            async with self._session().post(f"{self.rasa_url}/webhooks/rest/webhook", json=body) as r:
                if r.status != 200:
                    raise RasaUnavailable(f"Rasa answered {r.status}")
                answers = await r.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            raise RasaUnavailable(f"{type(e).__name__}") from e
        if not isinstance(answers, list):
            raise RasaUnavailable("Rasa's answer is not a list")
        return [a for a in answers if isinstance(a, dict)]

    async def replace_tracker(self, conversation_id: str, events: Optional[List[Dict[str, Any]]] = None) -> None:
        """PUT the conversation's events (default []: the tracker emptied)."""
        url = f"{self.rasa_url}/conversations/{quote(conversation_id, safe='')}/tracker/events"
        try:
            async with self._session().put(url, json=events or [], headers=self._auth) as r:
                if r.status != 200:
                    raise RasaUnavailable(f"Rasa answered {r.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise RasaUnavailable(f"{type(e).__name__}") from e

    async def remaining_messages(self, conversation_id: str) -> int:
        """How many patient and bot messages Rasa still holds for the conversation (all sessions).
        (Reading an empty tracker makes Rasa start a session in memory; those events don't count.)"""
        url = f"{self.rasa_url}/conversations/{quote(conversation_id, safe='')}/tracker"
        params = {"include_events": "ALL"}
        try:
            async with self._session().get(url, params=params, headers=self._auth) as r:
                if r.status != 200:
                    raise RasaUnavailable(f"Rasa answered {r.status}")
                tracker = await r.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            raise RasaUnavailable(f"{type(e).__name__}") from e
        events = (tracker or {}).get("events") or []
        return sum(1 for e in events if isinstance(e, dict) and e.get("event") in ("user", "bot"))
