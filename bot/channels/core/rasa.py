"""Rasa's REST channel as the gateway calls it (on loopback; the channel label is the gateway's)."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

import aiohttp


class RasaUnavailable(Exception):
    """Rasa could not be reached or answered with an error (the gateway answers locally)."""


class RasaREST:
    def __init__(self, rasa_url: str, timeout: float = 60) -> None:
        if not rasa_url.startswith(("http://", "https://")):
            raise ValueError(f"the Rasa URL must be http(s), not {rasa_url!r}")
        self.url = rasa_url.rstrip("/") + "/webhooks/rest/webhook"
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=2)
        self._http: Optional[aiohttp.ClientSession] = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self.timeout)
        return self._http

    async def close(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()
        self._http = None

    async def send(self, sender: str, text: str, channel: str) -> List[Dict[str, Any]]:
        """The patient's message; Rasa's answers (texts, buttons, custom payloads)."""
        body = {"sender": sender, "message": text, "metadata": {"channel": channel}, "input_channel": channel}
        try:
            async with self._session().post(self.url, json=body) as r:
                if r.status != 200:
                    raise RasaUnavailable(f"Rasa answered {r.status}")
                answers = await r.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            raise RasaUnavailable(type(e).__name__) from e
        if not isinstance(answers, list):
            raise RasaUnavailable("Rasa's answer is not a list")
        return [a for a in answers if isinstance(a, dict)]
