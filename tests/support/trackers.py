"""Hand-made rasa_sdk trackers for testing custom actions without a Rasa server."""
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

SLOTS = ("findings", "days_since_procedure", "expecting", "triage_level", "asked", "escalation_id")


def make_tracker(text: str, intent: str = "report_symptom", slots: Optional[Dict[str, Any]] = None,
                 sender: str = "conv-test") -> Tracker:
    values = {name: None for name in SLOTS}
    values.update(slots or {})
    latest = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": []}
    return Tracker(sender_id=sender, slots=values, latest_message=latest, events=[], paused=False,
                   followup_action=None, active_loop={}, latest_action_name="action_listen")


def apply(events: List[Dict[str, Any]], slots: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The slot values after the action's events, as the next turn's tracker would hold them."""
    out = dict(slots or {})
    for e in events:
        if e.get("event") == "slot":
            out[e["name"]] = e["value"]
    return out


