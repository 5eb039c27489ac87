"""The symptom turn: ask the triage engine, answer by level, remember, ask one follow-up."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot import conversation
from bot.channels.core.gateway import tag
from bot.escalation import get_service

from . import memory as slots

log = logging.getLogger(__name__)


def send(dispatcher: CollectingDispatcher, lines: List[conversation.Line]) -> None:
    for line in lines:
        buttons = [{"title": title, "payload": payload} for title, payload in line.buttons]
        if line.payload is not None:
            dispatcher.utter_message(text=line.text, buttons=buttons, json_message=line.payload)
        else:
            dispatcher.utter_message(text=line.text, buttons=buttons)


CHANNELS = {"telegram": "Telegram chat with the clinic's bot", "socketio": "the web chat page",
            "rest": "the REST API (test or integration)"}


def transcript(tracker: Tracker, limit: int = 20) -> List[Dict[str, Any]]:
    turns = [{"who": "patient" if e["event"] == "user" else "assistant", "text": e.get("text") or "",
              "at": e.get("timestamp")} for e in tracker.events if e.get("event") in ("user", "bot")]
    return turns[-limit:]


async def escalate(tracker: Tracker, decision, text: str) -> Optional[str]:
    """Record the escalation (committed) before the patient is told staff were alerted."""
    channel = tracker.get_latest_input_channel() or "unknown"
    active = [f for f in decision.findings if f.counts and f.level in ("urgent", "emergency")]
    try:
        recorded = await asyncio.to_thread(
            get_service().record, tracker.sender_id, channel, decision.level,
            conversation.summary(active), conversation.payload(decision, None)["triage"]["findings"],
            decision.reasons, text, transcript(tracker), decision.values.days_since_procedure,
            {"channel": channel, "how": CHANNELS.get(channel, channel)})
    except Exception:
        # The patient still gets the urgent answer with the numbers; only "staff alerted" is withheld.
        log.exception("could not record the escalation for conversation %s", tag(tracker.sender_id))
        return None
    return recorded.id


class ActionTriage(Action):
    def name(self) -> Text:
        return "action_triage"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        memory = slots.from_tracker(tracker)
        text = tracker.latest_message.get("text") or ""
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        try:
            decision = conversation.assess(text, memory)
        except Exception:
            # Never silence: the patient gets the clinic's numbers even if the engine fails.
            log.exception("triage failed for conversation %s", tag(tracker.sender_id))
            send(dispatcher, conversation.engine_error_lines())
            return []
        reference = await escalate(tracker, decision, text) if decision.red_flag else None
        reply = conversation.compose(decision, memory, intent=intent, escalation_ref=reference)
        # INFO names no symptom and no raw id (health data); DEBUG, off in production, has the concepts
        log.info("triage conversation=%s level=%s escalation=%s", tag(tracker.sender_id), decision.level, reference)
        log.debug("triage concepts=%s", ",".join(sorted({f.concept for f in decision.findings if f.counts})))
        send(dispatcher, reply.lines)
        return slots.to_events(reply.memory) + ([SlotSet("escalation_id", reference)] if reference else [])


class ActionFallback(Action):
    """Low NLU or dialogue confidence: say so, and still give the signs that mean calling now."""

    def name(self) -> Text:
        return "action_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        send(dispatcher, conversation.fallback_lines())
        return []


class ActionProcedureDay(Action):
    """ "hi, I had my HSG yesterday": greet, note the day of the test, ask how the patient is."""

    def name(self) -> Text:
        return "action_procedure_day"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        memory = slots.from_tracker(tracker)
        reply = conversation.procedure_day(tracker.latest_message.get("text") or "", memory)
        send(dispatcher, reply.lines)
        return slots.to_events(reply.memory)
