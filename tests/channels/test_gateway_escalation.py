"""The patient gateway records an escalation itself when Rasa's action could not."""
import asyncio

from bot.channels.core.gateway import Inbound, PatientGateway
from bot.triage import engine


class FakeRasa:
    def __init__(self, escalation_id):
        self.escalation_id = escalation_id

    async def send(self, sender, text, channel):
        return [{"text": "Call the emergency number now."},
                {"custom": {"triage": {"level": "emergency", "findings": [], "reasons": [],
                                       "escalation_id": self.escalation_id}}}]


def _run(escalation_id, text="I fainted at home and I'm bleeding heavily"):
    recorded = []

    def recorder(sender, channel, decision, message):
        recorded.append((sender, channel, decision.level))
        return "ESC-1"

    gateway = PatientGateway(FakeRasa(escalation_id), engine=engine, recorder=recorder)

    async def go():
        reply = await gateway.handle(Inbound(channel="rest", sender="p1", text=text))
        await gateway.drain()
        return reply

    return asyncio.run(go()), recorded


def test_a_red_flag_answered_without_an_escalation_is_recorded_by_the_gateway():
    reply, recorded = _run(escalation_id=None)
    assert reply.messages[0]["text"].startswith("Call the emergency number")   # Rasa's answer stands
    assert [r[2] for r in recorded] == ["emergency"]


def test_an_escalation_the_action_recorded_is_not_recorded_twice():
    _, recorded = _run(escalation_id="ESC-9")
    assert recorded == []


def test_no_escalation_for_what_is_not_a_red_flag():
    _, recorded = _run(escalation_id=None, text="some mild cramps")
    assert recorded == []
