"""A conversation's dialogue states, extended by each new event instead of rebuilt from the start.

Why: before every prediction, RulePolicy and MemoizationPolicy ask for the states of the whole
conversation (`Domain.states_for_tracker_history`), which replays every event since the session
began into a fresh tracker and builds one state per action. A turn makes about three predictions
for two policies, so a turn's cost grew with the conversation: py-spy put 38 % of a late turn's
server time there, and `make bench` measured turns 36-40 at 1.40x turns 1-5.

The function is a left fold over the applied events, so its partial result can be kept: per
conversation and per set of options, the running tracker, the states so far and the fold's two
flags. A call whose applied events begin with exactly the events already folded (the same event
objects, which the tracker cache keeps from turn to turn) folds only the new ones. Anything else
(another tracker rebuilt from the database, an undone turn, a restart) folds from the start, as
Rasa does. Each call returns fresh state dictionaries, because the featurisers edit them in place.
The fold body is Rasa 3.6's own (`Domain.states_for_tracker_history`), split so it can resume.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from rasa.shared.core.constants import PREVIOUS_ACTION
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    Restarted,
    SessionStarted,
    UserUtteranceReverted,
)

# events after which Rasa's applied events are not the earlier ones plus the new ones
_REWINDING = (Restarted, SessionStarted, ActionReverted, UserUtteranceReverted, ActiveLoop)

MAX_CONVERSATIONS = 256  # folds kept (a few kB to a few tens of kB each); the least recent go first


@dataclass
class _Fold:
    tracker: Any  # the running copy, after `events`
    events: list[Any] = field(default_factory=list)  # the applied events folded so far
    raw: list[Any] = field(default_factory=list)  # the tracker's events they were applied from
    states: list[dict] = field(default_factory=list)
    last_ml_action: Any = None
    turn_was_hidden: bool = False
    loops: bool = False  # a form ran: Rasa's applied events then depend on every event


_FOLDS: OrderedDict[tuple, _Fold] = OrderedDict()


def _step(
    domain: Any,
    fold: _Fold,
    hide_rule_turn: bool,
    ignore_rule_only_turns: bool,
    omit_unset_slots: bool,
    rule_only_data: Any,
) -> dict | None:
    """One iteration of Rasa's loop for the tracker as it is now; None when the turn is hidden."""
    tr = fold.tracker
    if ignore_rule_only_turns:
        if not fold.turn_was_hidden:
            fold.last_ml_action = domain._get_prev_action_sub_state(tr)
        if not tr.followup_action and tr.latest_action_name != tr.active_loop_name:
            fold.turn_was_hidden = hide_rule_turn
        if fold.turn_was_hidden:
            return None
    state = domain.get_active_state(tr, omit_unset_slots=omit_unset_slots)
    if ignore_rule_only_turns:
        domain._remove_rule_only_features(state, rule_only_data)
        if fold.states:
            domain._substitute_rule_only_user_input(state, fold.states[-1])
        if fold.last_ml_action:
            state[PREVIOUS_ACTION] = fold.last_ml_action
    return domain._clean_state(state)


def _copies(states: list[dict]) -> list[dict]:
    """Fresh states and sub-states, sharing among themselves what Rasa's own result shares (a
    state after a bot action carries the same user sub-state object as the state before it)."""
    memo: dict[int, dict] = {}
    out = []
    for state in states:
        fresh = {}
        for k, v in state.items():
            if isinstance(v, dict):
                if id(v) not in memo:
                    memo[id(v)] = dict(v)
                v = memo[id(v)]
            fresh[k] = v
        out.append(fresh)
    return out


def _key(domain: Any, tracker: Any, omit: bool, ignore: bool, rule_only_data: Any) -> tuple:
    rules = repr(sorted((rule_only_data or {}).items()))
    return (id(domain), tracker.sender_id, tracker.is_rule_tracker, omit, ignore, rules)


def _starts_with(items: Any, prefix: list[Any]) -> bool:
    return len(items) >= len(prefix) and all(map(operator.is_, prefix, items))


def _applied(tracker: Any, fold: _Fold | None) -> tuple[list[Any], bool]:
    """The tracker's applied events, and whether they were read from every event. Rasa's
    `applied_events` rereads every event (a quarter of a late turn's time once the states were
    incremental); when the only new events since the fold are ones that never undo or reorder
    earlier ones, the answer is the folded list plus them."""
    raw = tracker.events
    if fold is not None and fold.raw and not fold.loops and _starts_with(raw, fold.raw):
        new = list(islice(raw, len(fold.raw), None))
        if not any(isinstance(e, _REWINDING) for e in new):
            return fold.events + new, False
    return tracker.applied_events(), True


def states_for_tracker_history(
    domain: Any,
    tracker: Any,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: Any = None,
) -> list[dict]:
    key = _key(domain, tracker, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    fold = _FOLDS.get(key)
    applied, reread = _applied(tracker, fold)
    if fold is None or not _starts_with(applied, fold.events):
        fold = _Fold(tracker.init_copy())
    fold.raw = list(tracker.events)
    if reread:
        fold.loops = any(isinstance(e, ActiveLoop) and e.name for e in fold.raw)
    options = (ignore_rule_only_turns, omit_unset_slots, rule_only_data)
    for event in applied[len(fold.events) :]:
        if isinstance(event, ActionExecuted):
            state = _step(domain, fold, event.hide_rule_turn, *options)
            if state is not None:
                fold.states.append(state)
        fold.tracker.update(event)
        fold.events.append(event)
    _FOLDS[key] = fold
    _FOLDS.move_to_end(key)
    while len(_FOLDS) > MAX_CONVERSATIONS:
        _FOLDS.popitem(last=False)
    # the final state (after the last event) is Rasa's last yield: computed now, never kept
    final = _Fold(
        fold.tracker, states=fold.states, last_ml_action=fold.last_ml_action, turn_was_hidden=fold.turn_was_hidden
    )
    last = _step(domain, final, False, *options)
    return _copies(fold.states + ([last] if last is not None else []))


def install() -> None:
    from rasa.shared.core.domain import Domain

    Domain.states_for_tracker_history = states_for_tracker_history  # type: ignore[method-assign, assignment]


def clear() -> None:
    _FOLDS.clear()
