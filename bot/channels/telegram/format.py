"""Answers formatted for Telegram: HTML parse mode, everything escaped, long texts split.

- Every text is HTML-escaped (patients' words and Rasa's answers alike); the only markup is ours.
- The emergency answer's first sentence is bold ("Call 999 now.").
- Phone numbers stay plain digits, so Telegram's clients make them tappable.
- Texts over Telegram's 4096-character limit are split at paragraph, then line, then sentence,
  then word boundaries (a hard cut only for a single word that long); the limit is checked on the
  escaped text, in characters and in UTF-16 code units (what Telegram counts).
- Rasa's buttons become a one-time reply keyboard; the next answer removes it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from telegram import KeyboardButton, ReplyKeyboardMarkup, ReplyKeyboardRemove

TELEGRAM_LIMIT = 4096
BOLD_OPEN, BOLD_CLOSE = "<b>", "</b>"
_UNITS = [
    re.compile(r".+?(?:\n[ \t]*\n\s*|\Z)", re.S),  # paragraphs
    re.compile(r".+?(?:\n\s*|\Z)", re.S),  # lines
    re.compile(r".+?(?:[.!?…](?:[\"”’)\]]*)(?:\s+|\Z)|\Z)", re.S),  # sentences
    re.compile(r"\s*\S+\s*", re.S),  # words
]
_FIRST_SENTENCE = re.compile(r"\s*(.+?[.!?])(?=\s|\Z)|\s*(.+?)(?=\n|\Z)", re.S)


def escape(text: str) -> str:
    return html.escape(str(text), quote=False)


def size(text: str) -> int:
    """What counts against Telegram's limit: characters, or UTF-16 code units if more."""
    return max(len(text), len(text.encode("utf-16-le")) // 2)


def _fits(text: str, limit: int) -> bool:
    return size(escape(text.strip())) <= limit


def _hard_cut(text: str, limit: int) -> list[str]:
    out, current, used = [], "", 0
    for ch in text:
        cost = size(escape(ch))
        if current and used + cost > limit:
            out.append(current)
            current, used = "", 0
        current += ch
        used += cost
    if current.strip():
        out.append(current)
    return out


def _split(text: str, limit: int, level: int) -> list[str]:
    if _fits(text, limit):
        return [text]
    if level >= len(_UNITS):
        return _hard_cut(text, limit)
    units = [m.group(0) for m in _UNITS[level].finditer(text) if m.group(0)]
    if len(units) <= 1:
        return _split(text, limit, level + 1)
    out: list[str] = []
    current = ""
    for unit in units:
        if _fits(current + unit, limit):
            current += unit
            continue
        if current.strip():
            out.append(current)
        current = ""
        if _fits(unit, limit):
            current = unit
        else:
            out.extend(_split(unit, limit, level + 1))
    if current.strip():
        out.append(current)
    return out


def split_text(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Plain-text chunks, in order, each within `limit` once escaped; whitespace at cuts dropped."""
    return [c.strip() for c in _split(str(text).strip(), limit, 0) if c.strip()]


def emphasise_first_sentence(escaped: str) -> str:
    m = _FIRST_SENTENCE.match(escaped)
    if not m:
        return escaped
    group = 1 if m.group(1) is not None else 2
    start, end = m.span(group)
    return escaped[:start] + BOLD_OPEN + escaped[start:end] + BOLD_CLOSE + escaped[end:]


def to_html(text: str, emphasis: bool = False, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """One answer as HTML messages (one, or several if too long). emphasis: the emergency answer,
    whose first sentence is bold."""
    budget = limit - (len(BOLD_OPEN) + len(BOLD_CLOSE) if emphasis else 0)
    chunks = [escape(c) for c in split_text(text, budget)]
    if emphasis and chunks:
        chunks[0] = emphasise_first_sentence(chunks[0])
    return chunks


def keyboard(titles: Sequence[str]) -> ReplyKeyboardMarkup:
    """Quick replies as a one-time reply keyboard (short answers such as 0-10 several to a row)."""
    titles = [str(t)[:64] for t in titles if str(t).strip()]
    longest = max((len(t) for t in titles), default=0)
    per_row = 6 if longest <= 3 else 3 if longest <= 12 else 1
    rows = [[KeyboardButton(t) for t in titles[i : i + per_row]] for i in range(0, len(titles), per_row)]
    return ReplyKeyboardMarkup(rows, one_time_keyboard=True, resize_keyboard=True)


def remove_keyboard() -> ReplyKeyboardRemove:
    return ReplyKeyboardRemove()


def plain(texts: Iterable[str]) -> str:
    """For logs and tests: the text of HTML messages without our tags."""
    return "\n".join(html.unescape(re.sub(r"</?b>", "", t)) for t in texts)
