"""The triage engine's vocabulary: levels, findings, decisions, conversation context.

Plain dataclasses so that actions, the CLI, the escalation package and tests share one shape,
serialisable to JSON without Rasa.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

# Least to most urgent. The order is the product's safety rule: the most urgent finding wins.
LEVELS = ("info", "self_care", "routine", "urgent", "emergency")
RANK = {level: i for i, level in enumerate(LEVELS)}


def more_urgent(a: str, b: str) -> str:
    return a if RANK[a] >= RANK[b] else b


@dataclass
class Values:
    """Numbers read from the patient's words, normalised to one unit each."""

    temperature_c: Optional[float] = None      # highest reading in the message, in Celsius
    temperature_text: Optional[str] = None     # as the patient wrote it, e.g. "101F"
    pain_score: Optional[float] = None         # 0-10
    pads_per_hour: Optional[float] = None
    duration_days: Optional[float] = None      # how long the symptom has lasted
    days_since_procedure: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Finding:
    """One symptom mention and how it was said."""

    concept: str                     # concept id from the knowledge file
    name: str                        # human name for nurses
    klass: str                       # expected_effect | warning_sign | emergency_sign | other_symptom | ...
    text: str                        # the words matched
    start: int                       # character offsets in the cleaned message
    end: int
    negated: bool = False
    hypothetical: bool = False       # "what if I get a fever?", "when do cramps usually stop?"
    other_experiencer: bool = False  # someone else's experience ("my sister had chills after hers")
    proxy: bool = False              # reported by someone else about the patient ("my wife has a fever")
    historical: bool = False         # before the procedure / long ago
    modifiers: List[str] = field(default_factory=list)   # severe, worsening, not_relieved, mild, ...
    values: Dict[str, Any] = field(default_factory=dict)
    from_earlier: bool = False       # carried over from an earlier message of the conversation
    level: str = "info"              # what this finding alone calls for
    reason: str = ""                 # why, in words a nurse can check

    @property
    def counts(self) -> bool:
        """Whether this is a current symptom of the patient (and so can set the level)."""
        return not (self.negated or self.hypothetical or self.other_experiencer or self.historical)

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["class"] = d.pop("klass")
        d["counts"] = self.counts
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Finding":
        d = dict(d)
        d["klass"] = d.pop("class", d.pop("klass", "expected_effect"))
        d.pop("counts", None)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Context:
    """What the conversation already knows when a new message arrives."""

    days_since_procedure: Optional[float] = None
    earlier_findings: List[Finding] = field(default_factory=list)
    # The fact the bot just asked for, so that a bare answer ("38.4", "2", "7") can be read:
    # one of temperature, pain_score, pads_per_hour, days_since_procedure, painkillers_help.
    expecting: Optional[str] = None


@dataclass
class Decision:
    level: str
    findings: List[Finding]
    reasons: List[str]
    values: Values = field(default_factory=Values)
    # Facts whose answer could change the level, most useful first (for follow-up questions).
    missing: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)   # input handling notes (truncated, not English...)

    @property
    def red_flag(self) -> bool:
        return RANK[self.level] >= RANK["urgent"]

    def to_dict(self) -> Dict[str, Any]:
        return {
            "level": self.level,
            "reasons": list(self.reasons),
            "findings": [f.to_dict() for f in self.findings],
            "values": self.values.to_dict(),
            "missing": list(self.missing),
            "notes": list(self.notes),
        }
