"""bot/rasa_speedups.py: Rasa's two hot spots cached, with Rasa's behaviour unchanged."""
import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered

from bot import rasa_speedups

rasa_speedups.apply()


def _action():
    return RemoteAction("action_triage", None)


def test_a_valid_action_server_reply_passes():
    reply = {"events": [{"event": "slot", "name": "x", "value": 1}], "responses": [{"text": "hi"}]}
    assert _action()._validate_action_result(reply) is True


@pytest.mark.parametrize("reply", [
    {"events": "not a list"},
    {"events": [{"no_event_key": 1}]},
    {"responses": "nope"},
])
def test_an_invalid_reply_still_raises_with_rasa_s_message(reply):
    with pytest.raises(ValidationError) as e:
        _action()._validate_action_result(reply)
    assert "Failed to validate Action server response" in e.value.message


def test_event_names_resolve_to_the_same_classes_and_unknown_names_still_fail():
    for name, cls in (("user", UserUttered), ("action", ActionExecuted), ("slot", SlotSet)):
        assert Event.resolve_by_type(name) is cls
        assert Event.resolve_by_type(name) is cls  # from the cache
    with pytest.raises(ValueError):
        Event.resolve_by_type("no_such_event")
    assert Event.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
    assert Event.resolve_by_type("topic") is None


def test_apply_is_idempotent():
    patched = RemoteAction._validate_action_result
    rasa_speedups.apply()
    assert RemoteAction._validate_action_result is patched


def _grown_trackers(seed):
    """A random conversation (tests/support/dialogues.py), after each of its steps."""
    import random
    from pathlib import Path

    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    from support.dialogues import random_events

    domain = Domain.load(str(Path(__file__).resolve().parents[2] / "domain.yml"))
    rng = random.Random(seed)
    tracker = DialogueStateTracker.from_events(f"speed-{seed}", [ActionExecuted("action_listen")], slots=domain.slots)
    for _ in range(50):
        for e in random_events(rng, domain):
            tracker.update(e)
        yield tracker


def _state(t):
    from rasa.shared.core.trackers import EventVerbosity

    slots = {n: (s.value, s.has_been_set) for n, s in t.slots.items()}
    return (list(t.events), slots, t._paused, t.followup_action, t.latest_action, t.latest_message,
            t.latest_bot_utterance, t.active_loop, t.sender_id, t.is_rule_tracker, t.events.maxlen,
            t.current_state(EventVerbosity.ALL) | {"latest_event_time": None})


@pytest.mark.parametrize("seed", range(8))
def test_a_copy_is_what_replaying_every_event_gives(seed):
    for tracker in _grown_trackers(seed):
        fast, replayed = tracker.copy(), tracker.travel_back_in_time(float("inf"))
        assert _state(fast) == _state(replayed)
        fast.update(SlotSet("triage_level", "urgent"))  # the copy is independent of the original
        assert tracker.get_slot("triage_level") == replayed.get_slot("triage_level")
        assert len(tracker.events) == len(replayed.events)


@pytest.mark.parametrize("seed", range(8))
def test_applied_events_are_rasa_s_after_every_event_and_callers_cannot_change_them(seed):
    from rasa.shared.core.trackers import DialogueStateTracker

    rasa_s = DialogueStateTracker.applied_events.__wrapped__  # Rasa's own function
    for tracker in _grown_trackers(seed):
        expected = [id(e) for e in rasa_s(tracker)]
        first = tracker.applied_events()
        assert [id(e) for e in first] == expected
        first.append(SlotSet("x", 1))  # a caller editing its list
        assert [id(e) for e in tracker.applied_events()] == expected  # from the kept list
