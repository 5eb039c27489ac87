"""The HSG aftercare triage engine: one patient message (plus context) -> a decision.

Plain Python with spaCy and medspaCy; it never imports Rasa, the escalation package or channels.

    >>> from bot.triage import triage
    >>> triage("I've got a fever of 38.4").level
    'urgent'
"""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache
from pathlib import Path

from . import knowledge_base, second_opinion
from .decide import Decider
from .extract import Extractor
from .model import LEVELS, RANK, Context, Decision, Finding, Values, more_urgent
from .text import normalise

LEARNED_FILE = "learned.yml"
MIN_WORDS_FOR_OPINION = 3  # a bare answer ("2", "yes") is read with the question, by the rules
LONG_MESSAGE_WORDS = 25

__all__ = [
    "LEVELS",
    "RANK",
    "Context",
    "Decision",
    "Finding",
    "Values",
    "TriageEngine",
    "engine",
    "triage",
    "more_urgent",
]


class TriageEngine:
    """Built once (loads the knowledge files, compiles the patterns, loads or trains the learned
    second opinion), then reused."""

    def __init__(
        self,
        knowledge: knowledge_base.Knowledge | None = None,
        learned: bool = True,
        knowledge_dir: Path = knowledge_base.KNOWLEDGE_DIR,
    ):
        self.knowledge = knowledge or knowledge_base.default()
        self.extractor = Extractor(self.knowledge)
        self.decider = Decider(self.knowledge)
        self.second_opinion = None
        if learned and (knowledge_dir / LEARNED_FILE).exists():
            self.second_opinion = second_opinion.build(
                knowledge_dir / LEARNED_FILE, knowledge_dir, self.extractor.norms
            )

    def triage(self, text: str, context: Context | None = None, now: _dt.datetime | None = None) -> Decision:
        """now: the local time the patient wrote (for "since Monday", "4 pads since lunch")."""
        cleaned = normalise(text)
        context = context or Context()
        extraction = self.extractor.extract(cleaned.text, expecting=context.expecting, now=now)
        decision = self.decider.decide(extraction, context, cleaned.text, cleaned.notes)
        for f in decision.findings:
            if not f.from_earlier:
                f.start, f.end = cleaned.span(f.start, f.end)
        if self.second_opinion is not None and self._open_to_opinion(decision, extraction):
            raised = self.second_opinion.opinion(cleaned.text, extraction.norms, decision.level)
            if raised:
                decision.level = raised[0]
                decision.reasons.append(raised[1])
                decision.notes.append("raised by the learned second opinion")
        return decision

    @staticmethod
    def _open_to_opinion(decision: Decision, extraction) -> bool:
        """The learned model speaks only where the rules have nothing to go by: a temperature,
        a pain score or a pad count is judged by the thresholds a clinician signed, a bare answer
        ("2", "yes") by the question it answers, and a short message whose symptom the rules
        recognised and set aside ("not nauseous any more", "what if I get a fever?") by the
        rules' reading of it. A long message is always open: it can deny three signs and still
        report a fourth the rules do not know."""
        v = decision.values
        readings = (v.temperature_c, v.pain_score, v.pads_per_hour)
        set_aside = any(not f.counts or "read_as_part_of" in f.values for f in decision.findings if not f.from_earlier)
        short = extraction.words < LONG_MESSAGE_WORDS
        return (
            extraction.words >= MIN_WORDS_FOR_OPINION and all(r is None for r in readings) and not (set_aside and short)
        )


@lru_cache(maxsize=1)
def engine() -> TriageEngine:
    return TriageEngine()


def triage(text: str, context: Context | None = None) -> Decision:
    return engine().triage(text, context)
