"""Make any input safe to analyse, keeping character offsets equal to the patient's text.

Bad input (control characters, zero-width characters, 20,000 characters, emoji only) must give a
decision, never a crash or a hang; every replacement here keeps the length so that finding spans
point into the text the patient wrote.
"""
from __future__ import annotations

import re
import unicodedata
from typing import List, Tuple

MAX_CHARS = 20_000          # longer messages are cut (and the decision notes it)
SEGMENT_CHARS = 600         # analysed piece by piece so the work stays linear in the length

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_HYPHEN_IN_WORD = re.compile(r"(?<=[^\W\d_])[-\u2010\u2011\u2012\u2013](?=[^\W\d_])")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"',
                         "\u00b4": "'", "`": "'", "\r": "\n", "\t": " ", "\u00a0": " "})


def clean(text: str) -> Tuple[str, List[str]]:
    """Return (cleaned text of the same length, notes)."""
    if not isinstance(text, str):
        raise TypeError(f"a message must be text, not {type(text).__name__}")
    notes: List[str] = []
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS]
        notes.append(f"truncated to the first {MAX_CHARS} characters")
    text = _ANSI_ESCAPE.sub(lambda m: " " * len(m.group(0)), text)
    chars = []
    for ch in text.translate(_QUOTES):
        cat = unicodedata.category(ch)
        if ch != "\n" and cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            chars.append(" ")
        else:
            chars.append(ch)
    cleaned = _HYPHEN_IN_WORD.sub(" ", "".join(chars))
    return cleaned, notes


def segments(text: str) -> List[Tuple[int, str]]:
    """Split long text into (offset, piece) at sentence ends, each piece at most SEGMENT_CHARS."""
    if len(text) <= SEGMENT_CHARS:
        return [(0, text)]
    out: List[Tuple[int, str]] = []
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
