"""Random Rasa conversations for equivalence tests of Rasa speed-ups (seeded: reproducible)."""
import random

from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    BotUttered,
    FollowupAction,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
    UserUtteranceReverted,
)


def random_events(rng: random.Random, domain: Domain) -> list:
    """One step of a random conversation: a user turn, a bot action, a slot, or an event that
    rewinds, restarts, starts a session, schedules a follow-up or opens/closes a loop."""
    intents = list(domain.intents)
    actions = [a for a in domain.action_names_or_texts if not a.startswith("utter_faq/")][:25]
    slot = rng.choice([s.name for s in domain.slots])
    roll = rng.random()
    if roll < 0.3:
        return [ActionExecuted("action_listen"),
                UserUttered("x", {"name": rng.choice(intents), "confidence": 1.0},
                            [{"entity": "symptom", "value": "fever"}] if rng.random() < 0.3 else [])]
    if roll < 0.65:
        return [ActionExecuted(rng.choice(actions), hide_rule_turn=rng.random() < 0.3), BotUttered("hi")]
    if roll < 0.8:
        return [SlotSet(slot, rng.choice([None, "temperature", 3.0, ["fever"], "urgent"]))]
    return [rng.choice([UserUtteranceReverted(), ActionReverted(), Restarted(), SessionStarted(),
                        FollowupAction("action_triage"), ActiveLoop("a_loop"), ActiveLoop(None)])]
