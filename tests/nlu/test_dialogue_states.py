"""bot/dialogue_states.py gives exactly Rasa's states, turn after turn, whatever the events.

Random conversations (seeded) grow event by event, with undone turns, restarts, new sessions,
follow-ups, loops and rule-only turns; after each event the incremental states must equal Rasa's
own `Domain.states_for_tracker_history` for every option set the policies use."""
import random
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import dialogue_states
from support.dialogues import random_events

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = Domain.load(str(ROOT / "domain.yml"))
ORIGINAL = Domain.states_for_tracker_history
OPTIONS = [
    {},  # RulePolicy
    {"ignore_rule_only_turns": True, "rule_only_data": {"slots": ["expecting"], "active_loops": []}},
    {"omit_unset_slots": True},
    {"ignore_rule_only_turns": True, "rule_only_data": {"slots": [], "active_loops": ["a_loop"]}},
]


@pytest.mark.parametrize("seed", range(12))
def test_incremental_states_equal_rasa_s_after_every_event(seed):
    rng = random.Random(seed)
    dialogue_states.clear()
    tracker = DialogueStateTracker.from_events(f"conv-{seed}", [ActionExecuted("action_session_start"),
                                                                SessionStarted(), ActionExecuted("action_listen")],
                                               slots=DOMAIN.slots)
    for _ in range(60):
        for e in random_events(rng, DOMAIN):
            tracker.update(e)
        for options in OPTIONS:
            expected = ORIGINAL(DOMAIN, tracker, **options)
            assert dialogue_states.states_for_tracker_history(DOMAIN, tracker, **options) == expected
            assert dialogue_states.states_for_tracker_history(DOMAIN, tracker, **options) == expected


def test_a_tracker_rebuilt_from_storage_is_folded_from_the_start():
    dialogue_states.clear()
    events = [ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet", "confidence": 1.0}),
              ActionExecuted("utter_greet"), BotUttered("hello")]
    first = DialogueStateTracker.from_events("same", events, slots=DOMAIN.slots)
    dialogue_states.states_for_tracker_history(DOMAIN, first)
    # the same conversation read back from the database: equal events, new objects, another path
    other = [ActionExecuted("action_listen"), UserUttered("thanks", {"name": "thanks", "confidence": 1.0}),
             ActionExecuted("utter_goodbye"), BotUttered("bye"), ActionExecuted("action_listen"),
             UserUttered("bye", {"name": "goodbye", "confidence": 1.0})]
    second = DialogueStateTracker.from_events("same", other, slots=DOMAIN.slots)
    assert dialogue_states.states_for_tracker_history(DOMAIN, second) == ORIGINAL(DOMAIN, second)


def test_callers_editing_the_states_do_not_change_the_next_answer():
    dialogue_states.clear()
    tracker = DialogueStateTracker.from_events("edit", [
        ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet", "confidence": 1.0}),
        ActionExecuted("utter_greet"), BotUttered("hello"), ActionExecuted("action_listen"),
        UserUttered("I have a fever", {"name": "report_symptom", "confidence": 1.0}),
    ], slots=DOMAIN.slots)
    states = dialogue_states.states_for_tracker_history(DOMAIN, tracker)
    for state in states:           # what the featurisers do in place
        state.get("user", {}).pop("intent", None)
        state.clear()
    assert dialogue_states.states_for_tracker_history(DOMAIN, tracker) == ORIGINAL(DOMAIN, tracker)


def test_the_number_of_conversations_kept_is_bounded():
    dialogue_states.clear()
    for i in range(dialogue_states.MAX_CONVERSATIONS + 20):
        tracker = DialogueStateTracker.from_events(f"many-{i}", [ActionExecuted("action_listen")], slots=DOMAIN.slots)
        dialogue_states.states_for_tracker_history(DOMAIN, tracker)
    assert len(dialogue_states._FOLDS) == dialogue_states.MAX_CONVERSATIONS
