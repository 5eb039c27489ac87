"""One guarded way in for every patient message, whatever the channel.

The gateway owns what must not depend on a channel's code:
* input caps: a message over MAX_CHARS is refused with a clear reply (its first MAX_CHARS are still
  read for warning signs, so a red flag in a long message is answered);
* rate limits per sender and per client address: an over-limit message is not sent on to Rasa (no
  escalation floods) but gets a reply that says to call if it is urgent, with the safety answer if
  it reports a warning sign;
* no commands from patients: a leading "/" (Rasa's intent syntax, "/greet{...}",
  "/EXTERNAL_unacknowledged") is dropped and the words are read as words;
* bounded opaque sender ids, namespaced by channel (a REST caller cannot write into a Telegram or
  web conversation);
* the channel label, set by the server, never by the caller;
* the local safety answer: the engine reads the message first (milliseconds); when Rasa fails,
  errors, answers nothing, or takes longer than the budget (RED_FLAG_BUDGET for a red flag), the
  engine's answer with the clinic's numbers goes out, and a red flag's escalation is still recorded
  (the answer never waits more than RECORD_BUDGET for the reference).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot import conversation
from bot.triage import RANK

from .rasa import RasaUnavailable

log = logging.getLogger(__name__)
MAX_CHARS = 4000
RED_FLAG_BUDGET = float(os.environ.get("HSG_RED_FLAG_BUDGET", 2.0))
RASA_TIMEOUT = 30.0
RECORD_BUDGET = 1.0
ANSWER_TARGET = 2.5  # a red flag's whole answer, the escalation's reference included
MAX_SENDER = 64
_SAFE_ID = re.compile(r"[A-Za-z0-9_.:-]+")
_COMMAND = re.compile(r"^[\s/\\]+")


@lru_cache(maxsize=1)
def _texts() -> dict[str, str]:
    return yaml.safe_load((Path(__file__).with_name("texts.yml")).read_text(encoding="utf-8"))


def say(key: str) -> dict[str, Any]:
    return {"text": conversation.render(_texts()[key], max_chars=MAX_CHARS)}


PREFIXES = {"telegram": "tg-"}  # Telegram's opaque ids keep the prefix they always had


def bounded_sender(channel: str, sender: Any) -> str:
    """channel-<id>: the id as given when short and plain, else a hash of it (bounded, opaque)."""
    raw = sender if isinstance(sender, str) else repr(sender)
    prefix = PREFIXES.get(channel, f"{channel}-")
    if raw.startswith(prefix):
        raw = raw[len(prefix) :]
    if _SAFE_ID.fullmatch(raw) and len(prefix + raw) <= MAX_SENDER:
        return prefix + raw
    return prefix + "h" + hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:40]


def tag(conversation_id: str) -> str:
    """What logs name a conversation by: a short hash, never the id (or the words)."""
    return hashlib.sha256(conversation_id.encode("utf-8", "replace")).hexdigest()[:10]


def neutralise(text: str) -> str:
    """No intent syntax from patients: leading slashes go, the words stay."""
    return _COMMAND.sub("", text).strip() or text.strip()


@dataclass
class Inbound:
    channel: str  # set by the server: web, rest, telegram
    sender: Any
    text: Any
    address: str = ""  # the client's address, for the per-address limit


@dataclass
class Reply:
    messages: list[dict[str, Any]]
    status: str = "ok"  # ok | local | throttled | too_long | empty
    level: str | None = None
    conversation_id: str = ""
    notes: list[str] = field(default_factory=list)


class PatientGateway:
    def __init__(
        self,
        rasa,
        engine: Callable[[], Any],
        recorder: Callable[..., str | None] | None = None,
        sender_limit=None,
        address_limit=None,
        red_flag_budget: float = RED_FLAG_BUDGET,
        rasa_timeout: float = RASA_TIMEOUT,
        max_chars: int = MAX_CHARS,
    ) -> None:
        self.rasa = rasa
        self.engine = engine  # returns the loaded triage engine
        self.recorder = recorder  # (conversation, channel, decision, text) -> reference
        self.sender_limit, self.address_limit = sender_limit, address_limit
        self.red_flag_budget, self.rasa_timeout, self.max_chars = red_flag_budget, rasa_timeout, max_chars
        self._pending: set = set()

    async def handle(self, inbound: Inbound) -> Reply:
        text = inbound.text if isinstance(inbound.text, str) else ""
        text = text.replace("\x00", "")
        sender = bounded_sender(inbound.channel, inbound.sender)
        if not text.strip():
            return Reply([say("empty")], "empty", conversation_id=sender)
        if len(text) > self.max_chars:
            decision = await self._triage(text[: self.max_chars])
            return Reply(self._safety(decision) + [say("too_long")], "too_long", _level(decision), sender)
        if not await self._allowed(sender, inbound.address):
            decision = await self._triage(text)
            return Reply([say("throttled")] + self._safety(decision), "throttled", _level(decision), sender)
        text = neutralise(text)
        started = asyncio.get_running_loop().time()
        decision = await self._triage(text)
        red = bool(decision is not None and decision.red_flag)
        try:
            # shielded: past the budget the patient is answered locally, but Rasa still finishes the
            # turn, so the conversation keeps the message (and the action updates the same escalation)
            turn = asyncio.ensure_future(self.rasa.send(sender, text, inbound.channel))
            self._pending.add(turn)
            turn.add_done_callback(self._pending.discard)
            answers = await asyncio.wait_for(asyncio.shield(turn), self.red_flag_budget if red else self.rasa_timeout)
        except (RasaUnavailable, asyncio.TimeoutError) as e:
            log.warning("Rasa unavailable (%s) for %s; answering locally", type(e).__name__, tag(sender))
            answers = []
        said = _triage_level(answers)
        if red and answers and said is None:
            # Rasa answered a warning sign without any triage (a fallback, an FAQ answer): the
            # engine's safety answer goes first, Rasa's words after it
            log.warning("Rasa answered a red flag without a triage for %s; the engine's answer first", tag(sender))
            local = await self._local(sender, inbound.channel, text, decision, started)
            return Reply(local.messages + answers, "local", decision.level, sender)
        if red and (said is None or RANK.get(said, 0) < RANK[decision.level]):
            # Rasa answered a warning sign with less than the engine's level, or not at all: the
            # engine has the last word on a red flag
            if answers:
                log.warning("Rasa answered a red flag below the engine's level for %s; answering locally", tag(sender))
            return await self._local(sender, inbound.channel, text, decision, started)
        if red and answers and _escalation_id(answers) is None:
            # Rasa answered the warning sign but its action could not record the escalation (the
            # database down for it): record it here, where a down database spools it, so the nurses
            # still hear of it once the database is back. Nothing is lost; the answer does not wait.
            log.warning("Rasa answered a red flag without an escalation for %s; recording it here", tag(sender))
            await self._record(sender, inbound.channel, decision, text, 0.1)
        if answers:
            return Reply(answers, "ok", said or _level(decision), sender)
        return await self._local(sender, inbound.channel, text, decision, started)

    async def _allowed(self, sender: str, address: str) -> bool:
        checks = [(self.sender_limit, sender), (self.address_limit, f"addr:{address}" if address else None)]
        for limit, key in checks:
            if limit is not None and key is not None and not await limit.allow(key):
                log.warning("rate limit reached for %s", tag(key or ""))
                return False
        return True

    async def _triage(self, text: str):
        try:
            return await asyncio.to_thread(lambda: self.engine().triage(text))
        except Exception:  # noqa: BLE001 - logged; the reply then gives the numbers
            log.exception("local triage failed")
            return None

    def _safety(self, decision) -> list[dict[str, Any]]:
        """The engine's answer to a warning sign (nothing for anything else)."""
        if decision is None or not decision.red_flag:
            return []
        return safety_answer(decision, None)

    async def _local(self, sender: str, channel: str, text: str, decision, started: float) -> Reply:
        if decision is None or decision.level == "info":
            return Reply([say("rasa_down")], "local", _level(decision), sender)
        left = ANSWER_TARGET - (asyncio.get_running_loop().time() - started)
        wait = min(RECORD_BUDGET, max(0.2, left))
        reference = await self._record(sender, channel, decision, text, wait) if decision.red_flag else None
        return Reply(safety_answer(decision, reference), "local", decision.level, sender)

    async def _record(self, sender: str, channel: str, decision, text: str, wait: float) -> str | None:
        """Committed in the background; the answer waits at most `wait` s for its reference."""
        if self.recorder is None:
            return None
        task = asyncio.ensure_future(asyncio.to_thread(self.recorder, sender, channel, decision, text))
        self._pending.add(task)
        task.add_done_callback(self._recorded)
        try:
            return await asyncio.wait_for(asyncio.shield(task), wait)
        except asyncio.TimeoutError:
            log.warning("escalation for %s not committed within %.1f s; answering first", tag(sender), wait)
        except Exception:  # noqa: BLE001 - reported by _recorded
            pass
        return None

    def _recorded(self, task: asyncio.Future) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not record an escalation while Rasa is down: %s", type(task.exception()).__name__)

    async def drain(self, timeout: float = 30) -> None:
        """Wait for escalations still being recorded (shutdown, tests)."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout)


def safety_answer(decision, reference: str | None) -> list[dict[str, Any]]:
    """bot.conversation's answer (the wording Rasa's actions use), in Rasa's REST format, without
    the follow-up question (its answer could not be followed up here)."""
    reply = conversation.compose(decision, conversation.Memory(), escalation_ref=reference)
    lines = reply.lines[:-1] if reply.memory.expecting else reply.lines
    out: list[dict[str, Any]] = []
    for line in lines:
        out.append({"text": line.text})
        if line.payload is not None:
            out.append({"custom": line.payload})
    if not any("custom" in m for m in out):
        out.append({"custom": conversation.payload(decision, reference)})
    return out


def _level(decision) -> str | None:
    return decision.level if decision is not None else None


def _triage_payload(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """The triage payload of Rasa's answer ({} when it has none)."""
    for a in answers:
        custom = a.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("triage"), dict):
            return custom["triage"]
    return {}


def _escalation_id(answers: list[dict[str, Any]]) -> str | None:
    return _triage_payload(answers).get("escalation_id")


def _triage_level(answers: list[dict[str, Any]]) -> str | None:
    return _triage_payload(answers).get("level")
