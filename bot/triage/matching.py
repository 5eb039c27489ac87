"""Find concept phrasings in a message fast: patterns grouped by the word they cannot match
without, and only the groups whose word the message holds are run.

spaCy's Matcher checks every pattern at every token, so its cost grows with the whole knowledge
base (about 2,500 patterns) although a message mentions two or three concepts. Each pattern has
at least one token it cannot match without; the rarest such token (by wordfreq) is its trigger,
patterns with the same trigger share one spaCy Matcher, and an index from words (and word starts)
to matchers picks the few that can match a message. Patterns are checked once by `make
validate`, so the matchers skip spaCy's per-pattern schema validation at start-up.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import cast

from spacy.matcher import Matcher
from spacy.tokens import Doc
from spacy.vocab import Vocab
from wordfreq import zipf_frequency

Pattern = list[dict[str, object]]
NUMBER = "#number"
ALWAYS = "#always"


def _commonness(spec: dict[str, object]) -> float:
    """How common the words a token spec accepts are (the rarest required token makes the best
    trigger: "breath" rules out more messages than "can")."""
    norm = spec.get("NORM")
    if isinstance(norm, dict) and "REGEX" in norm:
        return 3.0
    words = [norm] if isinstance(norm, str) else list(norm.get("IN", [])) if isinstance(norm, dict) else []
    if not words:
        return 99.0
    return max(zipf_frequency(w, "en") for w in words) + 0.01 * len(words)


def _trigger(pattern: Pattern) -> tuple[str, object]:
    """("words", [...]) | ("regex", "...") | (NUMBER, None) | (ALWAYS, None)."""
    required = [s for s in pattern if s.get("OP") not in ("?", "*")]
    if not required:
        return ALWAYS, None
    spec = min(required, key=_commonness)
    norm = spec.get("NORM")
    if isinstance(norm, str):
        return "words", [norm]
    if isinstance(norm, dict) and "IN" in norm:
        return "words", sorted(norm["IN"])
    if isinstance(norm, dict) and "REGEX" in norm:
        return "regex", norm["REGEX"]
    if spec.get("LIKE_NUM"):
        return NUMBER, None
    return ALWAYS, None


class ConceptMatcher:
    def __init__(self, vocab: Vocab, patterns: Iterable[tuple[str, Pattern]]):
        """patterns: (concept id, spaCy token pattern) pairs."""
        self.vocab = vocab
        groups: dict[str, list[tuple[str, Pattern]]] = defaultdict(list)
        triggers: dict[str, tuple[str, object]] = {}
        for concept, pattern in patterns:
            trigger = _trigger(pattern)
            key = json.dumps(trigger)
            groups[key].append((concept, pattern))
            triggers[key] = trigger
        self._matchers: list[Matcher] = []
        self._by_word: dict[str, set[int]] = defaultdict(set)
        self._regexes: list[tuple[re.Pattern, int]] = []
        self._numbers: list[int] = []
        self._always: list[int] = []
        for key, members in groups.items():
            matcher = Matcher(vocab, validate=False)
            for concept, pattern in members:
                matcher.add(concept, [pattern])
            index = len(self._matchers)
            self._matchers.append(matcher)
            kind, value = triggers[key]
            if kind == "words":
                for word in cast("list[str]", value):  # ("words", [...]): see _trigger
                    self._by_word[word].add(index)
            elif kind == "regex":
                self._regexes.append((re.compile(value), index))
            elif kind == NUMBER:
                self._numbers.append(index)
            else:
                self._always.append(index)

    def candidates(self, doc: Doc) -> set[int]:
        """The matchers that could match something in doc."""
        norms = {t.norm_ for t in doc}
        chosen: set[int] = set(self._always)
        for norm in norms:
            chosen |= self._by_word.get(norm, set())
        for regex, index in self._regexes:
            if index not in chosen and any(regex.match(n) for n in norms):
                chosen.add(index)
        if self._numbers and any(t.like_num for t in doc):
            chosen.update(self._numbers)
        return chosen

    def __call__(self, doc: Doc) -> list[tuple[int, int, str]]:
        """(start token, end token, concept) of every match."""
        strings = self.vocab.strings
        out: list[tuple[int, int, str]] = []
        for index in sorted(self.candidates(doc)):
            out.extend((start, end, strings[match_id]) for match_id, start, end in self._matchers[index](doc))
        return out
