"""bot/inprocess_actions.py: Rasa's RemoteAction runs our actions in its own process and gets what
rasa-sdk's webhook would have answered (events, responses, a rejection, an unknown action)."""
import asyncio
from pathlib import Path

import pytest
from rasa.core.actions.action import RemoteAction
from rasa.core.channels import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.core.utils import AvailableEndpoints
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa_sdk import Action
from rasa_sdk.interfaces import ActionExecutionRejection

from bot import inprocess_actions, settings
from bot.inprocess_actions import InProcessActions

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = Domain.load(str(ROOT / "domain.yml"))


def _tracker(text: str, intent: str = "report_symptom") -> DialogueStateTracker:
    tracker = DialogueStateTracker.from_events("inproc-test", [
        ActionExecuted("action_listen"),
        UserUttered(text, {"name": intent, "confidence": 1.0}, input_channel="rest"),
    ], slots=DOMAIN.slots)
    return tracker


def _run(name: str, tracker: DialogueStateTracker, endpoint: InProcessActions):
    action = RemoteAction(name, endpoint)
    out = CollectingOutputChannel()
    return asyncio.run(action.run(out, TemplatedNaturalLanguageGenerator(DOMAIN.responses), tracker, DOMAIN))


@pytest.fixture(scope="module")
def endpoint():
    return InProcessActions("actions", enable_selective_domain=True)


def test_a_symptom_turn_runs_in_process_and_comes_back_as_rasa_events(endpoint):
    events = _run("action_triage", _tracker("I have mild cramps 3/10"), endpoint)
    said = [e.text for e in events if isinstance(e, BotUttered)]
    assert said and "after-effect" in " ".join(said)
    assert any(isinstance(e, SlotSet) and e.key == "triage_level" for e in events)


def test_a_red_flag_is_escalated_and_answered_with_the_number_in_process(endpoint):
    events = _run("action_triage", _tracker("I have a fever of 39 and chills"), endpoint)
    said = " ".join(e.text or "" for e in events if isinstance(e, BotUttered))
    assert settings.get().clinic.phone in said
    assert [e for e in events if isinstance(e, SlotSet) and e.key == "escalation_id" and e.value]


def test_an_unknown_action_fails_as_an_unknown_action_server_call_would(endpoint):
    with pytest.raises(RasaException, match="action_nobody_wrote"):
        _run("action_nobody_wrote", _tracker("hello", "greet"), endpoint)


class _Rejecting(Action):
    def name(self):
        return "action_test_rejects"

    def run(self, dispatcher, tracker, domain):
        raise ActionExecutionRejection(self.name(), "not now")


class _Crashing(Action):
    def name(self):
        return "action_test_crashes"

    def run(self, dispatcher, tracker, domain):
        raise RuntimeError("boom")


def test_a_rejection_and_a_crash_reach_rasa_as_they_would_over_http(endpoint):
    from rasa.core.actions.action import ActionExecutionRejection as RasaRejection

    endpoint.executor.register_action(_Rejecting())
    endpoint.executor.register_action(_Crashing())
    with pytest.raises(RasaRejection):
        _run("action_test_rejects", _tracker("hello", "greet"), endpoint)
    with pytest.raises(RasaException, match="action_test_crashes"):
        _run("action_test_crashes", _tracker("hello", "greet"), endpoint)


def test_install_replaces_the_action_endpoint_and_keeps_its_options(tmp_path):
    path = tmp_path / "endpoints.yml"
    path.write_text('action_endpoint:\n  url: "http://127.0.0.1:1/webhook"\n  enable_selective_domain: true\n')
    before = AvailableEndpoints.read_endpoints(str(path)).action
    assert not isinstance(before, InProcessActions)
    original = AvailableEndpoints.__dict__["read_endpoints"]
    try:
        inprocess_actions.install()
        inprocess_actions.install()  # idempotent
        after = AvailableEndpoints.read_endpoints(str(path)).action
        assert isinstance(after, InProcessActions)
        assert after.kwargs.get("enable_selective_domain") is True
    finally:
        AvailableEndpoints.read_endpoints = original
