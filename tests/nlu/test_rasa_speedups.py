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
