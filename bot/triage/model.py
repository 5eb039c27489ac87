"""The triage engine's vocabulary: levels, findings, decisions, conversation context.

Plain dataclasses so that actions, the CLI, the escalation package and tests share one shape,
serialisable to JSON without Rasa.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# the levels and their order (defined once, in bot.levels); part of the engine's vocabulary
from bot.levels import LEVELS, RANK, more_urgent  # noqa: F401


@dataclass
class Values:
    """Numbers read from the patient's words, normalised to one unit each."""

    temperature_c: float | None = None  # highest reading in the message, in Celsius
    temperature_text: str | None = None  # as the patient wrote it, e.g. "101F"
    pain_score: float | None = None  # 0-10
    pads_per_hour: float | None = None
    duration_days: float | None = None  # how long the symptom has lasted
    days_since_procedure: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Finding:
    """One symptom mention and how it was said."""

    concept: str  # concept id from the knowledge file
    name: str  # human name for nurses
    klass: str  # expected_effect | warning_sign | emergency_sign | other_symptom | ...
    text: str  # the words matched
    start: int  # character offsets in the cleaned message
    end: int
    negated: bool = False
    hypothetical: bool = False  # "what if I get a fever?", "when do cramps usually stop?"
    other_experiencer: bool = False  # someone else's experience ("my sister had chills after hers")
    proxy: bool = False  # reported by someone else about the patient ("my wife has a fever")
    historical: bool = False  # before the procedure / long ago
    modifiers: list[str] = field(default_factory=list)  # severe, worsening, not_relieved, mild, ...
    values: dict[str, Any] = field(default_factory=dict)
    from_earlier: bool = False  # carried over from an earlier message of the conversation
    level: str = "info"  # what this finding alone calls for
    reason: str = ""  # why, in words a nurse can check

    @property
    def counts(self) -> bool:
        """Whether this is a current symptom of the patient (and so can set the level)."""
        return not (self.negated or self.hypothetical or self.other_experiencer or self.historical)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class"] = d.pop("klass")
        d["counts"] = self.counts
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        d = dict(d)
        d["klass"] = d.pop("class", d.pop("klass", "expected_effect"))
        d.pop("counts", None)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Context:
    """What the conversation already knows when a new message arrives."""

    days_since_procedure: float | None = None
    earlier_findings: list[Finding] = field(default_factory=list)
    # The fact the bot just asked for, so that a bare answer ("38.4", "2", "7") can be read:
    # one of temperature, pain_score, pads_per_hour, days_since_procedure, painkillers_help.
    expecting: str | None = None


@dataclass
class Decision:
    level: str
    findings: list[Finding]
    reasons: list[str]
    values: Values = field(default_factory=Values)
    # Facts whose answer could change the level, most useful first (for follow-up questions).
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # input handling notes (truncated, not English...)

    @property
    def red_flag(self) -> bool:
        return RANK[self.level] >= RANK["urgent"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "reasons": list(self.reasons),
            "findings": [f.to_dict() for f in self.findings],
            "values": self.values.to_dict(),
            "missing": list(self.missing),
            "notes": list(self.notes),
        }
