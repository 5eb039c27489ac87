"""Conversation memory <-> Rasa slots."""
from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet

from bot.conversation import Memory


def from_tracker(tracker: Tracker) -> Memory:
    return Memory(
        findings=list(tracker.get_slot("findings") or []),
        days_since_procedure=tracker.get_slot("days_since_procedure"),
        expecting=tracker.get_slot("expecting"),
        level=tracker.get_slot("triage_level"),
        asked=list(tracker.get_slot("asked") or []),
    )


def to_events(memory: Memory) -> List[Dict[str, Any]]:
    return [
        SlotSet("findings", memory.findings),
        SlotSet("days_since_procedure", memory.days_since_procedure),
        SlotSet("expecting", memory.expecting),
        SlotSet("triage_level", memory.level),
        SlotSet("asked", memory.asked),
    ]
