"""Load and check the clinical knowledge files (bot/triage/knowledge/*.yml).

The files are the clinician-reviewed source of truth; this module only reads them into typed
objects and refuses files that are inconsistent, so a bad edit fails loudly at start-up and in
`make validate`, never silently at a patient's message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

KNOWLEDGE_DIR = Path(__file__).parent / "knowledge"

CLASSES = ("expected_effect", "warning_sign", "emergency_sign", "other_symptom", "not_a_symptom")
CLASS_LEVEL = {
    "expected_effect": "self_care",
    "warning_sign": "urgent",
    "emergency_sign": "emergency",
    "other_symptom": "routine",
    "not_a_symptom": "info",
}
ESCALATORS = ("severe", "worsening", "not_relieved", "pain_score", "pads_per_hour")
# ConText categories: flags decide whether a mention counts (negated, someone else's, ...);
# modifiers stay on the finding for the decision and the nurse (decide.py)
CONTEXT_FLAGS = ("negated", "hypothetical", "other_person", "someone_else", "proxy", "ongoing", "past", "historical")
CONTEXT_MODIFIERS = (
    "severe",
    "worsening",
    "mild",
    "during_procedure",
    "resolved",
    "persisting",
    "lingering",
    "relapsed",
)
CONTEXT_CATEGORIES = (*CONTEXT_FLAGS, *CONTEXT_MODIFIERS, "terminate", "pseudo")
DIRECTIONS = {
    "forward": "FORWARD",
    "backward": "BACKWARD",
    "both": "BIDIRECTIONAL",
    "terminate": "TERMINATE",
    "pseudo": "PSEUDO",
}


class KnowledgeError(ValueError):
    """The knowledge files are inconsistent; the message says where."""


@dataclass(frozen=True)
class Concept:
    id: str
    name: str
    klass: str
    phrasings: tuple[str, ...]
    normal_window_days: float | None = None
    escalates_when: tuple[str, ...] = ()
    escalates_to: str | None = None
    defers_to_reading: tuple[str, str] | None = None  # (value kind, level below threshold)
    yields_to: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    during_procedure_level: str | None = None
    lasting: bool = False  # a state, not an event: "last week" does not make it over (a pregnancy)
    explained_level: str | None = None  # the level of a symptom this circumstance explains

    def takes(self, value_kind: str) -> bool:
        return value_kind in self.reads or value_kind in self.escalates_when

    source: str = ""

    @property
    def level(self) -> str:
        return CLASS_LEVEL[self.klass]


@dataclass(frozen=True)
class Combination:
    """Findings that together mean more: every one of all_of, one of any_of and, when given, one
    of and_any_of (a different finding from the any_of one), e.g. shock = a bleed or severe pain
    (any_of) with clammy skin or a racing heart (and_any_of)."""

    name: str
    all_of: tuple[str, ...]
    any_of: tuple[str, ...]
    level: str
    source: str = ""
    and_any_of: tuple[str, ...] = ()

    @property
    def concepts(self) -> tuple[str, ...]:
        return self.all_of + self.any_of + self.and_any_of

    def holds(self, known: set) -> bool:
        if not set(self.all_of) <= known:
            return False
        first = set(self.any_of) & known
        if not first:
            return False
        if not self.and_any_of:
            return True
        second = set(self.and_any_of) & known
        return bool(second) and (len(first | second) > 1)


@dataclass(frozen=True)
class ContextCue:
    category: str
    cue: str
    direction: str  # medspaCy direction name
    max_words: int | None = None


@dataclass
class Knowledge:
    concepts: dict[str, Concept]
    word_lists: dict[str, tuple[str, ...]]
    combinations: list[Combination]
    cues: list[ContextCue]
    thresholds: dict[str, object]
    value_words: dict[str, tuple[str, ...]]
    implies: dict[str, str]
    abbreviations: dict[str, str]
    never_correct: frozenset = field(default_factory=frozenset)
    other_languages: tuple[str, ...] = ()  # spelling.yml: words common in these are not corrected
    answers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # context.yml general_questions: openers, reporter_words, this_names_the_test
    general_questions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # context.yml written_for_the_patient / written_by_the_patient: who "she" is in a message
    written_for_the_patient: tuple[str, ...] = ()
    written_by_the_patient: tuple[str, ...] = ()
    # context.yml test_still_ahead / test_done: is the test behind the patient or ahead?
    test_still_ahead: tuple[str, ...] = ()
    test_done: tuple[str, ...] = ()


def _load_yaml(name: str, directory: Path) -> dict:
    path = directory / name
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise KnowledgeError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise KnowledgeError(f"{path}: expected a mapping at the top level")
    return data


def _tuple_of_str(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise KnowledgeError(f"{where}: expected a list of words")
    if any(isinstance(v, bool) for v in value):
        # YAML reads bare yes/no/on/off as true/false: the word would silently become "True"
        raise KnowledgeError(f"{where}: put quotes around yes, no, on and off (YAML reads them as true/false)")
    return tuple(str(v) for v in value)


def _reading_rule(raw, where: str) -> tuple[str, str] | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, dict)
        or raw.get("value") not in ("temperature", "pads_per_hour")
        or raw.get("below_threshold") not in CLASS_LEVEL.values()
    ):
        raise KnowledgeError(
            f"{where}: defers_to_reading needs value (temperature or pads_per_hour) and below_threshold (a level)"
        )
    return raw["value"], raw["below_threshold"]


def load(directory: Path = KNOWLEDGE_DIR) -> Knowledge:
    concepts_doc = _load_yaml("concepts.yml", directory)
    context_doc = _load_yaml("context.yml", directory)
    values_doc = _load_yaml("values.yml", directory)
    spelling_doc = _load_yaml("spelling.yml", directory)

    word_lists = {
        name: _tuple_of_str(words, f"word_lists.{name}")
        for name, words in (concepts_doc.get("word_lists") or {}).items()
    }

    concepts: dict[str, Concept] = {}
    for i, raw in enumerate(concepts_doc.get("concepts") or []):
        where = f"concepts.yml concept #{i + 1} ({raw.get('id', '?')})"
        cid = raw.get("id")
        if not cid or not isinstance(cid, str):
            raise KnowledgeError(f"{where}: missing id")
        if cid in concepts:
            raise KnowledgeError(f"{where}: duplicate id {cid!r}")
        klass = raw.get("class")
        if klass not in CLASSES:
            raise KnowledgeError(f"{where}: class must be one of {', '.join(CLASSES)}, not {klass!r}")
        phrasings = _tuple_of_str(raw.get("phrasings") or [], f"{where}.phrasings")
        if not phrasings:
            raise KnowledgeError(f"{where}: has no phrasings")
        escalates = _tuple_of_str(raw.get("escalates_when") or [], f"{where}.escalates_when")
        bad = [e for e in escalates if e not in ESCALATORS]
        if bad:
            raise KnowledgeError(f"{where}: unknown escalates_when {bad}; known: {ESCALATORS}")
        window = raw.get("normal_window_days")
        if klass == "expected_effect" and window is None:
            raise KnowledgeError(f"{where}: an expected effect needs normal_window_days")
        concepts[cid] = Concept(
            id=cid,
            name=str(raw.get("name") or cid),
            klass=klass,
            phrasings=phrasings,
            normal_window_days=float(window) if window is not None else None,
            escalates_when=escalates,
            escalates_to=raw.get("escalates_to"),
            defers_to_reading=_reading_rule(raw.get("defers_to_reading"), where),
            yields_to=_tuple_of_str(raw.get("yields_to") or [], f"{where}.yields_to"),
            reads=_tuple_of_str(raw.get("reads") or [], f"{where}.reads"),
            during_procedure_level=raw.get("during_procedure_level"),
            lasting=bool(raw.get("lasting", False)),
            explained_level=raw.get("explained_level"),
            source=str(raw.get("source") or ""),
        )

    for concept in concepts.values():
        if concept.escalates_to and concept.escalates_to not in concepts:
            raise KnowledgeError(f"concept {concept.id}: escalates_to unknown concept {concept.escalates_to!r}")
        unknown = [c for c in concept.yields_to if c not in concepts]
        if unknown:
            raise KnowledgeError(f"concept {concept.id}: yields_to unknown concepts {unknown}")

    combinations = []
    for raw in concepts_doc.get("combinations") or []:
        combo = Combination(
            name=str(raw["name"]),
            all_of=_tuple_of_str(raw.get("all_of") or [], "combinations.all_of"),
            any_of=_tuple_of_str(raw.get("any_of") or [], "combinations.any_of"),
            level=str(raw["level"]),
            source=str(raw.get("source") or ""),
            and_any_of=_tuple_of_str(raw.get("and_any_of") or [], "combinations.and_any_of"),
        )
        unknown = [c for c in combo.concepts if c not in concepts]
        if unknown:
            raise KnowledgeError(f"combination {combo.name!r}: unknown concepts {unknown}")
        if combo.level not in ("routine", "urgent", "emergency"):
            raise KnowledgeError(f"combination {combo.name!r}: level must be routine, urgent or emergency")
        combinations.append(combo)

    cues: list[ContextCue] = []
    for category, rules in (context_doc.get("categories") or {}).items():
        if category not in CONTEXT_CATEGORIES:
            raise KnowledgeError(f"context.yml: unknown category {category!r}")
        for rule in rules or []:
            direction = DIRECTIONS.get(str(rule.get("direction")))
            if direction is None:
                raise KnowledgeError(f"context.yml {category}: direction must be one of {list(DIRECTIONS)}")
            cues.append(
                ContextCue(
                    category=category, cue=str(rule["cue"]), direction=direction, max_words=rule.get("max_words")
                )
            )

    thresholds = dict(values_doc.get("thresholds") or {})
    for key in (
        "fever_celsius",
        "fever_fahrenheit",
        "heavy_bleeding_pads_per_hour",
        "severe_pain_score",
        "plausible_celsius",
        "plausible_fahrenheit",
    ):
        if key not in thresholds:
            raise KnowledgeError(f"values.yml: missing threshold {key}")
    value_words = {
        k: _tuple_of_str(values_doc.get(k) or [], f"values.yml {k}")
        for k in ("temperature_cues", "pain_cues", "pain_cues_digits_only", "procedure_words", "now_words")
    }
    implies = dict(values_doc.get("implies") or {})
    for value, cid in implies.items():  # pain_score, pads_per_hour, fever_reading
        if cid not in concepts:
            raise KnowledgeError(f"values.yml implies.{value}: unknown concept {cid!r}")

    answers = values_doc.get("answers") or {}
    for key in ("affirmative", "negative"):
        if not answers.get(key):
            raise KnowledgeError(f"values.yml: answers.{key} must list words")
    return Knowledge(
        concepts=concepts,
        word_lists=word_lists,
        combinations=combinations,
        cues=cues,
        thresholds=thresholds,
        value_words=value_words,
        implies=implies,
        abbreviations={
            str(k): str(v)
            for k, v in {**(spelling_doc.get("abbreviations") or {}), **(spelling_doc.get("loanwords") or {})}.items()
        },
        other_languages=_tuple_of_str(spelling_doc.get("other_languages") or [], "spelling.yml other_languages"),
        never_correct=frozenset(str(w) for w in spelling_doc.get("never_correct") or []),
        answers={k: _tuple_of_str(v, f"values.yml answers.{k}") for k, v in (values_doc.get("answers") or {}).items()},
        general_questions=_general_questions(context_doc),
        written_for_the_patient=_tuple_of_str(
            context_doc.get("written_for_the_patient") or [], "context.yml written_for_the_patient"
        ),
        written_by_the_patient=_tuple_of_str(
            context_doc.get("written_by_the_patient") or [], "context.yml written_by_the_patient"
        ),
        test_still_ahead=_tuple_of_str(context_doc.get("test_still_ahead") or [], "context.yml test_still_ahead"),
        test_done=_tuple_of_str(context_doc.get("test_done") or [], "context.yml test_done"),
    )


def _general_questions(context_doc: dict) -> dict[str, tuple[str, ...]]:
    raw = context_doc.get("general_questions") or {}
    out = {
        k: _tuple_of_str(raw.get(k) or [], f"context.yml general_questions.{k}")
        for k in (
            "openers",
            "reporter_words",
            "this_names_the_test",
            "anaphors",
            "first_person",
            "not_the_patient",
            "own_test",
        )
    }
    if not out["openers"] or not out["reporter_words"]:
        raise KnowledgeError("context.yml: general_questions needs openers and reporter_words")
    return out


@lru_cache(maxsize=1)
def default() -> Knowledge:
    return load()
