"""Session start: carry the conversation's memory over and load the clinic's details into slots."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot import settings

CARRIED_OVER = ("findings", "days_since_procedure", "triage_level", "asked", "escalation_id")


class ActionSessionStart(Action):
    def name(self) -> Text:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        events: List[Dict[Text, Any]] = [SessionStarted()]
        for name in CARRIED_OVER:
            value = tracker.get_slot(name)
            if value is not None:
                events.append(SlotSet(name, value))
        for name, value in settings.get().clinic.as_slots().items():
            events.append(SlotSet(name, value))
        events.append(ActionExecuted("action_listen"))
        return events
