"""Make any input safe to analyse, and remember where each analysed character came from.

Bad input (control characters, zero-width characters, 20,000 characters, emoji only) must give a
decision, never a crash or a hang. Text that a typist or an attacker can make look like a word
without being that word is folded back to the word: Unicode compatibility forms (full-width
"ｆａｉｎｔｅｄ", ligatures), letters from other scripts that look Latin ("fаinted" with a Cyrillic
a), accents and combining marks ("f̶a̶i̶n̶t̶e̶d̶"), and invisible characters (zero-width spaces,
soft hyphens, direction marks) which are deleted, not turned into a space, so "f\u200bainted"
is "fainted". Because characters are deleted and expanded, `Cleaned.origin` maps every analysed
character back to the patient's text, so finding spans still point into what the patient wrote.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_CHARS = 20_000  # longer messages are cut (and the decision notes it)
SEGMENT_CHARS = 600  # analysed piece by piece so the work stays linear in the length

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_HYPHEN_IN_WORD = re.compile(r"(?<=[^\W\d_])[-\u2010\u2011\u2012\u2013](?=[^\W\d_])")
_QUOTES = {
    "\u2019": "'",
    "\u2018": "'",
    "\u02bc": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u00b4": "'",
    "`": "'",
    "\r": "\n",
    "\t": " ",
    "\u00a0": " ",
}
# Letters of other scripts drawn like Latin ones (Unicode confusables, the common lower-case set).
_LOOKALIKES = dict(zip("аеорсухіјѕԁӏһкмтвпАЕОРСУХІЈЅКМТВНαοτυνρεικ", "aeopcyxijsdlhkmtbnAEOPCYXIJSKMTBHaotuvpeik"))
_DELETED_CATEGORIES = ("Cf", "Mn", "Me")  # invisible format characters and combining marks
_BLANKED_CATEGORIES = ("Cc", "Cs", "Co", "Cn", "Zl", "Zp")


@dataclass
class Cleaned:
    text: str  # what the engine analyses
    origin: list[int]  # origin[i]: index in the patient's text of text[i]; one extra at the end
    notes: list[str]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map [start, end) in the analysed text to the patient's text."""
        if end <= start:
            return self.origin[start], self.origin[start]
        return self.origin[start], self.origin[end - 1] + 1


def _fold(ch: str) -> str:
    """One character as the engine should read it ("" to delete it)."""
    if ch in _QUOTES:
        return _QUOTES[ch]
    if ch in _LOOKALIKES:
        return _LOOKALIKES[ch]
    if ch.isascii():
        return ch if ch == "\n" or ch.isprintable() else " "
    cat = unicodedata.category(ch)
    if cat in _DELETED_CATEGORIES:
        return ""
    if cat in _BLANKED_CATEGORIES:
        return " "
    folded = unicodedata.normalize("NFKD", ch)
    folded = "".join(c for c in folded if unicodedata.category(c) not in _DELETED_CATEGORIES)
    folded = unicodedata.normalize("NFKC", folded) or ""
    return "".join(_QUOTES.get(c, _LOOKALIKES.get(c, c)) for c in folded)


def normalise(text: str) -> Cleaned:
    """The text the engine reads, with the map back to the patient's characters."""
    if not isinstance(text, str):
        raise TypeError(f"a message must be text, not {type(text).__name__}")
    notes: list[str] = []
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS]
        notes.append(f"truncated to the first {MAX_CHARS} characters")
    text = _ANSI_ESCAPE.sub(lambda m: " " * len(m.group(0)), text)
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        folded = _fold(ch)
        out.append(folded)
        origin.extend([i] * len(folded))
    origin.append(len(text))
    cleaned = _HYPHEN_IN_WORD.sub(" ", "".join(out))
    return Cleaned(cleaned, origin, notes)


def clean(text: str) -> tuple[str, list[str]]:
    """(the text the engine reads, notes); see normalise() for the offsets."""
    c = normalise(text)
    return c.text, c.notes


def segments(text: str) -> list[tuple[int, str]]:
    """Split long text into (offset, piece) at sentence ends, each piece at most SEGMENT_CHARS."""
    if len(text) <= SEGMENT_CHARS:
        return [(0, text)]
    out: list[tuple[int, str]] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + SEGMENT_CHARS)
        if end < len(text):
            window = text[start:end]
            cut = max(window.rfind(". "), window.rfind("! "), window.rfind("? "), window.rfind("\n"))
            if cut < SEGMENT_CHARS // 3:
                cut = window.rfind(" ")
            if cut > 0:
                end = start + cut + 1
        out.append((start, text[start:end]))
        start = end
    return out
