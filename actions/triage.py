"""The symptom turn: ask the triage engine, answer by level, remember, ask one follow-up."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot import conversation

from . import memory as slots

log = logging.getLogger(__name__)


def send(dispatcher: CollectingDispatcher, lines: List[conversation.Line]) -> None:
    for line in lines:
        buttons = [{"title": title, "payload": payload} for title, payload in line.buttons]
        if line.payload is not None:
            dispatcher.utter_message(text=line.text, buttons=buttons, json_message=line.payload)
        else:
            dispatcher.utter_message(text=line.text, buttons=buttons)


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
            log.exception("triage failed for conversation %s", tracker.sender_id)
            send(dispatcher, conversation.engine_error_lines())
            return []
        reply = conversation.compose(decision, memory, intent=intent)
        log.info("triage conversation=%s level=%s concepts=%s", tracker.sender_id, decision.level,
                 ",".join(sorted({f.concept for f in decision.findings if f.counts})))
        send(dispatcher, reply.lines)
        return slots.to_events(reply.memory)


class ActionFallback(Action):
    """Low NLU or dialogue confidence: say so, and still give the signs that mean calling now."""

    def name(self) -> Text:
        return "action_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        send(dispatcher, conversation.fallback_lines())
        return []
