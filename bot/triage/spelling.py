"""Correct small misspellings of the knowledge files' words ("fevr", "vomting", "diziness").

A word is corrected only when it is not common English (wordfreq's Zipf frequency below
RARE_ZIPF) and lies within one edit (two for long words) of a knowledge word, so "never" is
never read as "fever". Lookup is a symmetric-deletion index: a few dictionary probes per
unknown word, cached, so the hot path stays well under a millisecond.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterable
from functools import lru_cache
from itertools import combinations
from pathlib import Path

import wordfreq
from wordfreq import zipf_frequency

RARE_ZIPF = 2.5
MIN_LENGTH = 4
MAX_LENGTH = 20  # longer "words" are not misspellings (and would be costly to look up)


def _cache_dir() -> Path:
    return Path(os.environ.get("HSG_CACHE_DIR") or Path.home() / ".cache" / "hsg-aftercare")


def common_words(languages: Iterable[str]) -> frozenset[str]:
    """Words common (Zipf >= RARE_ZIPF) in any of these languages and not in English, of a length
    the corrector looks at. Asking wordfreq word by word would hold every language's whole table
    in each process (about 150 MB for eight languages, in the action server, the web app and
    Rasa alike); the list it yields is about 20 MB, built once per machine in a child process
    (about 6 s) and cached under HSG_CACHE_DIR (default ~/.cache/hsg-aftercare)."""
    langs = sorted(set(languages))
    if not langs:
        return frozenset()
    from importlib.metadata import version

    key = hashlib.sha256(f"{langs}|{version('wordfreq')}|{RARE_ZIPF}|{MIN_LENGTH}|{MAX_LENGTH}".encode())
    path = _cache_dir() / f"common-words-{key.hexdigest()[:12]}.txt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "bot.triage.spelling", str(path), *langs], check=True)
    return frozenset(path.read_text(encoding="utf-8").split())


def _build_common_words(path: Path, languages: list[str]) -> None:
    words: set[str] = set()
    for lang in languages:
        for w in wordfreq.iter_wordlist(lang):
            if zipf_frequency(w, lang) < RARE_ZIPF:
                break  # the list runs from the most frequent down
            if w.isalpha() and MIN_LENGTH <= len(w) <= MAX_LENGTH and zipf_frequency(w, "en") < RARE_ZIPF:
                words.add(w)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text("\n".join(sorted(words)), encoding="utf-8")
    tmp.replace(path)  # whole or not at all, even with several processes building at once


def _deletes(word: str, max_edits: int) -> set[str]:
    out = {word}
    for k in range(1, max_edits + 1):
        if len(word) - k < 2:
            break
        for idx in combinations(range(len(word)), k):
            out.add("".join(c for i, c in enumerate(word) if i not in idx))
    return out


def _max_edits(word: str) -> int:
    return 2 if len(word) >= 6 else 1


def damerau_levenshtein(a: str, b: str) -> int:
    """Optimal string alignment distance (adjacent transpositions count as one edit)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


class SpellingCorrector:
    def __init__(
        self,
        vocabulary: Iterable[str],
        never_correct: Iterable[str] = (),
        preferred: Iterable[str] = (),
        other_languages: Iterable[str] = (),
    ):
        """preferred: words that win a tie (symptom words over the cue words around them);
        other_languages: a word common in one of these is a word, not a misspelling."""
        self.vocabulary = {w for w in vocabulary if w.isalpha() and len(w) >= MIN_LENGTH}
        self.preferred = set(preferred)
        self.never_correct = set(never_correct)
        self.other_languages = tuple(other_languages)
        self.other_words = common_words(self.other_languages)
        self._index: dict[str, set[str]] = {}
        for word in self.vocabulary:
            for deleted in _deletes(word, 2):
                self._index.setdefault(deleted, set()).add(word)
        self.correct = lru_cache(maxsize=20000)(self._correct)

    def _correct(self, word: str) -> str | None:
        """The knowledge word this is a misspelling of, or None."""
        if (
            not MIN_LENGTH <= len(word) <= MAX_LENGTH
            or not word.isalpha()
            or word in self.vocabulary
            or word in self.never_correct
            or zipf_frequency(word, "en") >= RARE_ZIPF
            or word in self.other_words
        ):
            return None
        max_edits = _max_edits(word)
        candidates: set[str] = set()
        for deleted in _deletes(word, max_edits):
            candidates |= self._index.get(deleted, set())
        best = None
        for cand in candidates:
            if cand[0] != word[0] and cand[:2] != word[1::-1]:
                continue  # typos rarely change the first letter; swapping the first two is one
            dist = damerau_levenshtein(word, cand)
            if dist > min(max_edits, _max_edits(cand)):
                continue
            if dist == 2 and cand[:2] != word[:2]:
                continue  # two edits are trusted only when the word starts the same way
            key = (dist, cand not in self.preferred, -zipf_frequency(cand, "en"), cand)
            if best is None or key < best[0]:
                best = (key, cand)
        return best[1] if best else None


if __name__ == "__main__":  # the child process of common_words()
    _build_common_words(Path(sys.argv[1]), sys.argv[2:])
