"""The HSG aftercare triage engine: one patient message (plus context) -> a decision.

Plain Python with spaCy and medspaCy; it never imports Rasa, the escalation package or channels.

    >>> from bot.triage import triage
    >>> triage("I've got a fever of 38.4").level
    'urgent'
"""
from __future__ import annotations

import datetime as _dt
from functools import lru_cache
from typing import Optional

from . import knowledge_base
from .decide import Decider
from .extract import Extractor
from .model import LEVELS, RANK, Context, Decision, Finding, Values, more_urgent
from .text import normalise

__all__ = ["LEVELS", "RANK", "Context", "Decision", "Finding", "Values", "TriageEngine", "engine",
           "triage", "more_urgent"]


class TriageEngine:
    """Built once (loads the knowledge files and compiles the patterns), then reused."""

    def __init__(self, knowledge: Optional[knowledge_base.Knowledge] = None):
        self.knowledge = knowledge or knowledge_base.default()
        self.extractor = Extractor(self.knowledge)
        self.decider = Decider(self.knowledge)

    def triage(self, text: str, context: Optional[Context] = None,
               now: Optional[_dt.datetime] = None) -> Decision:
        """now: the local time the patient wrote (for "since Monday", "4 pads since lunch")."""
        cleaned = normalise(text)
        context = context or Context()
        extraction = self.extractor.extract(cleaned.text, expecting=context.expecting, now=now)
        decision = self.decider.decide(extraction, context, cleaned.text, cleaned.notes)
        for f in decision.findings:
            if not f.from_earlier:
                f.start, f.end = cleaned.span(f.start, f.end)
        return decision


@lru_cache(maxsize=1)
def engine() -> TriageEngine:
    return TriageEngine()


def triage(text: str, context: Optional[Context] = None) -> Decision:
    return engine().triage(text, context)
