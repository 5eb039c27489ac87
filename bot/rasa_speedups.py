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
Applied by `python -m bot rasa` before Rasa starts (`apply()` is idempotent).
"""

from __future__ import annotations

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


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    _patch_action_validation()
    _patch_event_resolution()
    from bot import dialogue_states

    dialogue_states.install()
    _APPLIED = True
