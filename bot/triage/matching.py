"""Find concept phrasings in a message fast: one spaCy Matcher per concept, run only when the
message holds a word that concept's patterns require.

spaCy's Matcher checks every pattern at every token, so its cost grows with the whole knowledge
base (about 2,000 patterns) although a message mentions two or three concepts. Each pattern has
at least one token it cannot match without; a concept's matcher runs only when the message has a
word that fits one of those tokens. Patterns are checked once by `make validate`, so the matchers
skip spaCy's per-pattern schema validation at start-up.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Sequence, Set, Tuple

from spacy.matcher import Matcher
from spacy.tokens import Doc
from spacy.vocab import Vocab
from wordfreq import zipf_frequency

Pattern = List[Dict[str, object]]


@dataclass
class _Trigger:
    """Words, word starts and numbers, one of which a message needs for the patterns to match."""

    words: Set[str] = field(default_factory=set)
    prefixes: List[str] = field(default_factory=list)
    number: bool = False
    always: bool = False

    def add(self, pattern: Pattern) -> None:
        required = [s for s in pattern if s.get("OP") not in ("?", "*")]
        spec = min(required, key=_commonness) if required else None
        norm = spec.get("NORM") if spec else None
        if isinstance(norm, str):
            self.words.add(norm)
        elif isinstance(norm, dict) and "IN" in norm:
            self.words.update(norm["IN"])
        elif isinstance(norm, dict) and "REGEX" in norm:
            self.prefixes.append(norm["REGEX"])
        elif spec is not None and spec.get("LIKE_NUM"):
            self.number = True
        else:
            self.always = True

    def compile(self) -> None:
        self.regex = re.compile("|".join(f"(?:{p})" for p in self.prefixes)) if self.prefixes else None

    def fires(self, norms: Set[str], has_number: bool) -> bool:
        if self.always or (self.number and has_number) or (self.words & norms):
            return True
        return bool(self.regex) and any(self.regex.match(n) for n in norms)


def _commonness(spec: Dict[str, object]) -> float:
    """How common the words a token spec accepts are (the rarest required token makes the best
    trigger: "breath" rules out more messages than "can")."""
    norm = spec.get("NORM")
    words = [norm] if isinstance(norm, str) else list(norm.get("IN", [])) if isinstance(norm, dict) else []
    if isinstance(norm, dict) and "REGEX" in norm:
        return 3.0
    if not words:
        return 99.0
    return max(zipf_frequency(w, "en") for w in words) + 0.01 * len(words)


class ConceptMatcher:
    def __init__(self, vocab: Vocab, patterns: Iterable[Tuple[str, Pattern]]):
        """patterns: (concept id, spaCy token pattern) pairs."""
        self._matchers: Dict[str, Matcher] = {}
        self._triggers: Dict[str, _Trigger] = {}
        for concept, pattern in patterns:
            if concept not in self._matchers:
                self._matchers[concept] = Matcher(vocab, validate=False)
                self._triggers[concept] = _Trigger()
            self._matchers[concept].add(concept, [pattern])
            self._triggers[concept].add(pattern)
        for trigger in self._triggers.values():
            trigger.compile()
        self.vocab = vocab

    def __call__(self, doc: Doc) -> List[Tuple[int, int, str]]:
        """(start token, end token, concept) of every match."""
        norms = {t.norm_ for t in doc}
        has_number = any(t.like_num for t in doc)
        out: List[Tuple[int, int, str]] = []
        for concept, trigger in self._triggers.items():
            if trigger.fires(norms, has_number):
                out.extend((start, end, concept) for _id, start, end in self._matchers[concept](doc))
        return out

    def concepts_for(self, doc: Doc) -> Sequence[str]:
        """The concepts whose matcher would run on doc (for tests)."""
        norms = {t.norm_ for t in doc}
        has_number = any(t.like_num for t in doc)
        return [c for c, t in self._triggers.items() if t.fires(norms, has_number)]

