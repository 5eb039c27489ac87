"""Turn the knowledge files' phrasing syntax into spaCy token patterns.

Syntax (documented for clinicians at the top of concepts.yml):
    word      that word (tokenised like patient text, so "can't" is two tokens)
    word*     any word starting with "word"
    #         any number (7, 7.5, seven)
    (a|b c)   one of the options; an option may be several words
    x?        x may be left out (x: a word, word*, (group) or {list})
    ...       up to GAP_MAX other words, never a negation, "but" or . ! ?
    {name}    one entry of the named word list
Patterns match on the token attribute NORM, which the pipeline sets to the lower-cased,
spelling-corrected form of each word (see spelling.py), so phrasings are written in plain words.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence

GAP_MAX = 3
# Words a gap may not cross: otherwise "bleeding is not heavy" would read as "bleeding ... heavy".
GAP_STOP = [
    "not",
    "no",
    "never",
    "nothing",
    "without",
    "none",
    "nor",
    "neither",
    "but",
    "however",
    "although",
    "though",
    "except",
    ".",
    "!",
    "?",
    ";",
    ":",
    "if",
    "whether",
    "until",
]

# Word forms a spelling corrector should know for a prefix such as dizz* or vomit*.
PREFIX_SUFFIXES = ("", "s", "es", "ed", "ing", "y", "ier", "iness", "ness", "ish", "ion", "ions", "ly")

Spec = dict[str, object]
Option = list[Spec]  # a sequence of token specs


class PhrasingError(ValueError):
    pass


def _split_items(text: str) -> list[str]:
    """Split on spaces outside parentheses and braces."""
    items: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text.strip():
        if ch == "(" and depth > 0 and "(" in "".join(current):
            raise PhrasingError(f"brackets inside brackets in {text!r}: write two phrasings instead")
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
            if depth < 0:
                raise PhrasingError(f"unbalanced brackets in {text!r}")
        if ch.isspace() and depth == 0:
            if current:
                items.append("".join(current))
                current = []
        else:
            current.append(ch)
    if depth != 0:
        raise PhrasingError(f"unbalanced brackets in {text!r}")
    if current:
        items.append("".join(current))
    return items


class PhrasingCompiler:
    def __init__(self, word_norms: Callable[[str], list[str]], word_lists: Mapping[str, Sequence[str]]):
        """word_norms(text) gives the NORM of each token of text, as the pipeline would set it."""
        self._word_norms = word_norms
        self._word_lists = word_lists

    # -- options -----------------------------------------------------------------------------
    def _word_option(self, word: str) -> Option:
        if word == "#":
            return [{"LIKE_NUM": True}]
        if word.endswith("*") and len(word) > 1:
            stem = word[:-1].lower()
            return [{"NORM": {"REGEX": "^" + re.escape(stem)}}]
        norms = self._word_norms(word)
        if not norms:
            raise PhrasingError(f"empty word {word!r}")
        return [{"NORM": n} for n in norms]

    def _options(self, alternatives: Sequence[str]) -> list[Option]:
        options = []
        for alt in alternatives:
            if alt.startswith("{") and alt.endswith("}"):
                options.extend(self._options(self._word_list(alt[1:-1])))
            else:
                options.append(self._phrase_option(alt))
        return options

    def _word_list(self, name: str) -> Sequence[str]:
        if name not in self._word_lists:
            raise PhrasingError(f"unknown word list {{{name}}}")
        return self._word_lists[name]

    def _phrase_option(self, phrase: str) -> Option:
        seq: Option = []
        for w in phrase.split():
            seq.extend(self._word_option(w))
        return seq

    def _item_options(self, item: str) -> list[Option]:
        optional = item.endswith("?") and len(item) > 1
        if optional:
            item = item[:-1]
        if item == "...":  # a gap may already be empty: "...?" is the same as "..."
            return [[{"NORM": {"NOT_IN": GAP_STOP}, "OP": "?"} for _ in range(GAP_MAX)]]
        elif item.startswith("(") and item.endswith(")"):
            options = self._options([a.strip() for a in item[1:-1].split("|") if a.strip()])
        elif item.startswith("{") and item.endswith("}"):
            options = self._options(self._word_list(item[1:-1]))
        else:
            options = [self._word_option(item)]
        merged = _merge_single_tokens(options)
        if optional and len(merged) == 1 and len(merged[0]) == 1:
            return [[{**merged[0][0], "OP": "?"}]]  # one optional token: one pattern, not two
        return merged + ([[]] if optional else [])

    # -- public ------------------------------------------------------------------------------
    def compile(self, phrasing: str) -> list[list[Spec]]:
        """All token patterns that the phrasing stands for (usually one)."""
        per_item = [self._item_options(item) for item in _split_items(phrasing)]
        patterns = []
        for combo in itertools.product(*per_item):
            pattern = [spec for option in combo for spec in option]
            if any(spec.get("OP") != "?" for spec in pattern):
                patterns.append(pattern)
        if not patterns:
            raise PhrasingError(f"phrasing {phrasing!r} can match nothing")
        if len(patterns) > 256:
            raise PhrasingError(f"phrasing {phrasing!r} expands to {len(patterns)} patterns; split it")
        return patterns

    def vocabulary(self, phrasing: str) -> list[str]:
        """The plain words of a phrasing (for the spelling corrector)."""
        words: list[str] = []
        for item in _split_items(phrasing):
            item = item.rstrip("?")
            if item.startswith("{") and item.endswith("}"):
                alternatives = list(self._word_lists.get(item[1:-1], ()))
            elif item.startswith("("):
                alternatives = []
                for alt in item[1:-1].split("|"):
                    alternatives += list(self._word_lists.get(alt[1:-1], ())) if alt.startswith("{") else [alt]
            else:
                alternatives = [item]
            for alt in alternatives:
                for w in alt.split():
                    if w.endswith("*"):
                        stem = w[:-1].lower()
                        words.extend(stem + suffix for suffix in PREFIX_SUFFIXES)
                    elif w != "...":
                        words.extend(self._word_norms(w))
        return words


def _plain(spec: Spec) -> bool:
    value = spec.get("NORM")
    return (
        "OP" not in spec
        and len(spec) == 1
        and (isinstance(value, str) or (isinstance(value, dict) and set(value) == {"REGEX"}))
    )


def _merge_position(specs: list[Spec]) -> Spec:
    """One token spec accepting any of the given plain specs (IN set or one REGEX)."""
    exact = sorted({sp["NORM"] for sp in specs if isinstance(sp["NORM"], str)})
    prefixes = sorted({sp["NORM"]["REGEX"][1:] for sp in specs if isinstance(sp["NORM"], dict)})
    if prefixes:
        alternation = "|".join(prefixes + [re.escape(e) + "$" for e in exact])
        return {"NORM": {"REGEX": f"^(?:{alternation})"}}
    if len(exact) == 1:
        return {"NORM": exact[0]}
    return {"NORM": {"IN": exact}}


def _key(spec: Spec) -> str:
    return json.dumps(spec, sort_keys=True)


def _fold_same_length(group: list[Option]) -> list[Option]:
    """Fold options that differ in one position only: "(can't|couldn't) (breathe|swallow)" style
    lists become [can|could][not] ... Exact: no cross-over is ever accepted ("not getting better"
    and "keeps getting worse" stay two options, so "not getting worse" is not matched)."""
    length = len(group[0])
    for i in reversed(range(length)):
        buckets: dict[str, list[Option]] = {}
        for opt in group:
            buckets.setdefault("|".join(_key(opt[j]) for j in range(length) if j != i), []).append(opt)
        group = [
            b[0] if len(b) == 1 else b[0][:i] + [_merge_position([o[i] for o in b])] + b[0][i + 1 :]
            for b in buckets.values()
        ]
    return group


def _merge_single_tokens(options: list[Option]) -> list[Option]:
    """Fold a group's options so patterns stay few (thousands of patterns make start-up and
    matching slow): one-word options become one IN set or REGEX, and multi-word options of the
    same length that differ in one position only share one pattern."""
    by_length: dict[int, list[Option]] = {}
    rest: list[Option] = []
    for opt in options:
        if opt and all(_plain(sp) for sp in opt):
            by_length.setdefault(len(opt), []).append(opt)
        else:
            rest.append(opt)
    merged: list[Option] = []
    for length in sorted(by_length):
        merged += _fold_same_length(by_length[length])
    return merged + rest
