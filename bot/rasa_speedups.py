"""Measured hot spots of Rasa 3.6's turn, removed without changing what Rasa does.

py-spy on the Rasa server under `make bench` load (40-turn conversations, action server
included) put 21.7 % of the server's time in validating each action-server reply against Rasa's
JSON schema: `jsonschema.validate` checks the *schema itself* against the meta-schema on every
call before it checks the reply. And 8.3 % went to resolving each stored event's type name by
walking every subclass of `Event` (with `inspect.isabstract` on each) for every event of the
tracker, a cost that grows with the conversation.

Both results are pure functions of things fixed once Rasa is loaded (the schema, the event
classes), so each is computed once and reused. The reply is still validated in full and an
invalid reply still raises `ValidationError`; an unknown event name still raises `ValueError`.
The third, the policies' dialogue states rebuilt from the first event on every prediction, is
folded incrementally instead (bot/dialogue_states.py).

Then what still grew with the conversation (a tracker of 320 events, 40 turns): `copy()` before
every action replays every event into a new tracker (0.7 ms, three or four times a turn), and
`applied_events()` rereads every event for each caller (0.95 ms, several times a turn). A copy
now takes the state the replay would rebuild (the tracker's state is a function of its events,
Rasa's own invariant); applied events are kept until the event list changes (append-only).
Applied by `python -m bot rasa` before Rasa starts (`apply()` is idempotent).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from typing import Any

_APPLIED = False


def _cached_validator(schema_factory: Any) -> Any:
    """The validator for the action-reply schema, checked against its meta-schema once."""
    from jsonschema.validators import validator_for

    schema = schema_factory()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _patch_action_validation() -> None:
    from jsonschema import ValidationError
    from jsonschema.exceptions import best_match
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    validator = functools.lru_cache(maxsize=1)(lambda: _cached_validator(RemoteAction.action_response_format_spec))

    def _validate_action_result(self: Any, result: dict[str, Any]) -> bool:
        error = best_match(validator().iter_errors(result))  # what jsonschema.validate raises
        if error is not None:
            assert isinstance(error, ValidationError)
            error.message += (
                ". Failed to validate Action server response from API, "
                "make sure your response from the Action endpoint is valid. "
                f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
            )
            raise error
        return True

    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]


def _patch_event_resolution() -> None:
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    known: dict[str, Any] = {}

    def resolve_by_type(type_name: str, default: Any = None) -> Any:
        cls = known.get(type_name)
        if cls is None:
            cls = original(type_name, default)
            if cls is not None and cls is not default:  # remember real event classes only
                known[type_name] = cls
        return cls

    Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[method-assign]


def _fast_copy(self: Any) -> Any:
    """What `travel_back_in_time(inf)` returns, without replaying: the same events, and the state
    they set (slots, latest message/action/bot utterance, follow-up, loop, paused)."""
    tracker = self.init_copy()
    tracker.events.extend(self.events)
    tracker.slots = {name: copy.copy(slot) for name, slot in self.slots.items()}
    tracker._paused = self._paused
    tracker.followup_action = self.followup_action
    tracker.latest_action = dict(self.latest_action) if self.latest_action is not None else None
    tracker.latest_message = self.latest_message
    tracker.latest_bot_utterance = self.latest_bot_utterance
    tracker.active_loop = dataclasses.replace(self.active_loop) if self.active_loop is not None else None
    return tracker


def _patch_tracker_copy() -> None:
    from rasa.shared.core.trackers import DialogueStateTracker

    DialogueStateTracker.copy = _fast_copy  # type: ignore[method-assign]


def _patch_applied_events() -> None:
    from rasa.shared.core.trackers import DialogueStateTracker

    original = DialogueStateTracker.applied_events

    @functools.wraps(original)
    def applied_events(self: Any) -> list[Any]:
        events = self.events
        last = events[-1] if events else None
        kept = self.__dict__.get("_applied_kept")
        if kept is not None and kept[0] is events and kept[1] == len(events) and kept[2] is last:
            return list(kept[3])
        result = original(self)
        self.__dict__["_applied_kept"] = (events, len(events), last, list(result))
        return result

    DialogueStateTracker.applied_events = applied_events  # type: ignore[method-assign]


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    _patch_action_validation()
    _patch_event_resolution()
    _patch_tracker_copy()
    _patch_applied_events()
    from bot import dialogue_states

    dialogue_states.install()
    _APPLIED = True
