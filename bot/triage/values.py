"""Read the numbers patients write: temperatures, pain scores, pads per hour, durations, days.

Patients write 38.5, 38,5, 38.5C, 101F, "101 degrees"; 7/10, "7 out of ten", "a 7"; "3 pads in
2 hours", "a pad an hour", "a pad every 30 minutes"; "for 6 days", "it's been a week", "day 7",
"since yesterday". This is the number grammar; which words count as cues, and the thresholds,
come from knowledge/values.yml.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

NUMBER_WORDS: dict[str, float] = {
    "zero": 0,
    "none": 0,
    "no": 0,
    "half": 0.5,
    "half a": 0.5,
    "half an": 0.5,
    "a": 1,
    "an": 1,
    "one": 1,
    "single": 1,
    "two": 2,
    "a couple of": 2,
    "couple of": 2,
    "a couple": 2,
    "couple": 2,
    "three": 3,
    "a few": 3,
    "few": 3,
    "four": 4,
    "several": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "forty five": 45,
    "sixty": 60,
}
_WORDS = "|".join(sorted((re.escape(w) for w in NUMBER_WORDS), key=len, reverse=True))
QTY = rf"(?:\d+(?:[.,]\d+)?|{_WORDS})"
# A bare answer to "how many?" must be a real number: "a bit of discharge" is not one pad.
_ANSWER_WORDS = "|".join(
    sorted((re.escape(w) for w in NUMBER_WORDS if w not in ("a", "an", "no", "few", "couple")), key=len, reverse=True)
)
ANSWER_QTY = rf"(?:\d+(?:[.,]\d+)?|{_ANSWER_WORDS})"
# Rough clock times patients anchor to ("since lunch").
ANCHOR_HOURS = {
    "breakfast": 8.0,
    "this morning": 8.0,
    "midday": 12.0,
    "noon": 12.0,
    "lunch": 12.5,
    "lunchtime": 12.5,
    "this afternoon": 14.0,
    "teatime": 17.5,
    "dinner": 18.5,
}


_CLOCK = r"\d{1,2}(?:[:.]\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)?"
_CLOCK_ITEM = re.compile(r"(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?")
_PAD_TIMES = re.compile(
    r"\b(?:changed|changing|change|swapped|new|soaked|through)\s+(?:my\s+|a\s+|the\s+)?"
    r"(?:pads?|towels?|sanitary\s+towels?|tampons?|liners?)\s+(?:at\s+)?"
    rf"(?P<times>{_CLOCK}(?:\s*(?:,|and|then|&)\s*{_CLOCK}){{2,}})"
)


def _clock_of(item: tuple[str, str, str]) -> float | None:
    hour, minute, ap = item
    h = int(hour) + (int(minute) / 60 if minute else 0.0)
    if h >= 24 or (minute and int(minute) >= 60):
        return None
    if ap.startswith("p") and h < 12:
        h += 12
    return h


def _clock_hours(m: re.Match | None, anchors: dict[str, float]) -> float | None:
    if m is None:
        return None
    if m.groupdict().get("anchor"):
        return anchors.get(" ".join(m.group("anchor").split()))
    hour = int(m.group("h"))
    if hour > 12:
        return None
    pm = bool(m.group("ap")) and m.group("ap").startswith("p")
    return (hour % 12) + (12 if pm else 0) + (int(m.group("mi")) / 60 if m.group("mi") else 0)


ORDINALS = {
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
}
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
UNIT_DAYS = {
    "min": 1 / 1440,
    "minute": 1 / 1440,
    "minutes": 1 / 1440,
    "mins": 1 / 1440,
    "h": 1 / 24,
    "hr": 1 / 24,
    "hrs": 1 / 24,
    "hour": 1 / 24,
    "hours": 1 / 24,
    "day": 1,
    "days": 1,
    "dys": 1,
    "dyas": 1,
    "dayz": 1,
    "daze": 1,
    "d": 1,
    "night": 1,
    "nights": 1,
    "week": 7,
    "weeks": 7,
    "wk": 7,
    "wks": 7,
    "fortnight": 14,
    "month": 30,
    "months": 30,
}
PADS = r"(?:sanitary\s+)?(?:pads?|towels?|tampons?|liners?|pantyliners?|panty\s+liners?)"
# "less than one pad an hour" is under the number: read it as half a pad below it.
BELOW = r"(?:(?P<below>less\s+than|fewer\s+than|under|not\s+even|not\s+quite|below)\s+)?"
# "in about an hour", "within just under 40 minutes": a rough time span is still a time span
ABOUT = r"(?:(?:about|around|roughly|approx|approximately|maybe|barely|just|under|less\s+than|not\s+even|only)\s+)*"


_UNITS = {
    "zero": 0,
    "oh": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_TENS = {"thirty": 30, "forty": 40, "ninety": 90}
_U = "|".join(_UNITS)
# Temperatures written in words: "thirty eight point two", "a hundred and one", "ninety nine point five".
SPELLED_TEMPERATURE = re.compile(
    rf"\b(?:(?P<hundred>(?:a|one)\s+)?hundred(?:\s+and)?\s+(?P<hu>{_U})"
    rf"|(?P<tens>thirty|forty|ninety)[\s-]+(?P<tu>{_U}))"
    rf"(?:\s+(?:point|dot)\s+(?P<dec>{_U}))?\b"
)


DIGITS_POINT = re.compile(r"(?<![\d.,])\b(?P<n>\d{2,3})\s+(?:point|dot)\s+(?P<d>\d)\b")


def spelled_temperature(m: re.Match) -> float:
    value: float
    if m.group("hu"):
        value = 100 + _UNITS[m.group("hu")]
    else:
        value = _TENS[m.group("tens")] + _UNITS[m.group("tu")]
    if m.group("dec"):
        value += _UNITS[m.group("dec")] / 10
    return float(value)


def number(text: str) -> float | None:
    t = " ".join(text.lower().split())
    if t in NUMBER_WORDS:
        return float(NUMBER_WORDS[t])
    try:
        return float(t.replace(",", "."))
    except ValueError:
        return None


_LOOKING = re.compile(
    r"\b(?:check|checks|checking|checked|look|looks|looking|looked|peek|peeking)\b(?:\s+\w+){0,2}\s*$"
)


_TODAY_IS = re.compile(
    r"\b(?:it'?s|its|it\s+is|today\s+is|today'?s|now\s+it'?s)\s+(?:now\s+)?(?P<day>" + "|".join(WEEKDAYS) + r")\b"
)


def _part_hours(m: re.Match) -> float | None:
    """ "half 5" = 5:30, "quarter to 9" = 8:45 (am or pm is settled by the start time)."""
    hour = number(m.group("h"))
    if hour is None:
        return None
    part = " ".join(m.group("part").split())
    return hour + {"half": 0.5, "half past": 0.5, "quarter past": 0.25, "quarter to": -0.25}[part]


def _times(text: str) -> float | None:
    """A count, also as "twice" or "3 times"."""
    t = " ".join(text.lower().split())
    if t == "twice":
        return 2.0
    return number(t[: -len(" times")] if t.endswith(" times") else t)


# a slash between two decimal readings ("37.4 / 38.0"): a list separator
_READING_SLASH = re.compile(r"(?<=\d[.,]\d)(\s*)/(?=\s*\d{2,3}[.,]\d)")


@dataclass
class ValueMention:
    kind: str  # temperature | pain_score | pads_per_hour | duration_days | days_since_procedure
    value: float  # temperature in its own unit (see unit); others as named
    start: int
    end: int
    text: str
    unit: str | None = None  # "C" or "F" for temperatures


def _lower_same_length(text: str) -> str:
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _alternation(words: Sequence[str]) -> str:
    """Regex alternation of cue words; a trailing * means any word starting so."""
    parts = []
    for w in sorted(words, key=len, reverse=True):
        if w.endswith("*"):
            parts.append(re.escape(w[:-1]) + r"\w*")
        else:
            parts.append(re.escape(w).replace(r"\ ", r"\s+"))
    return "|".join(parts)


class ValueReader:
    def __init__(self, thresholds: Mapping[str, object], cues: Mapping[str, Sequence[str]]):
        # values.yml plausible_celsius / plausible_fahrenheit: [low, high]
        self.c_range: tuple[float, ...] = tuple(cast(Iterable[float], thresholds["plausible_celsius"]))
        self.f_range: tuple[float, ...] = tuple(cast(Iterable[float], thresholds["plausible_fahrenheit"]))
        t_cues = _alternation(cues["temperature_cues"])
        p_cues = _alternation(cues["pain_cues"])
        p_digit_cues = _alternation(cues["pain_cues_digits_only"])
        proc = _alternation(cues["procedure_words"])
        tnum = r"(?P<n>\d{2,3}(?:[.,]\d{1,2})?)"
        not_other_unit = (
            r"(?!\s*(?:/|out\s+of|of\s+10|days?|dys|dyas|dayz|hours?|hrs?|weeks?|wks?|pads?|times|%|am\b|"
            r"pm\b|mins?|minutes?|years?|yrs?|kg|lbs?|mg|ml|nights?|months?|sides?d?\b|o'?clock|"
            r"tablets?|pills?|doses?|ibuprofen|paracetamol|nurofen|towels?|tampons?|liners?))"
        )
        self._temp = [
            re.compile(tnum + r"\s*(?:°|º|˚|deg(?:rees?)?\.?)?\s*(?P<u>c|f|celsius|centigrade|fahrenheit)\b"),
            re.compile(tnum + r"\s*(?:°|º|˚|degrees?\b|deg\b)"),
            re.compile(rf"\b(?:{t_cues})\b[^\d.!?;]{{0,24}}?(?<![\d.,]){tnum}(?![\d]|[.,]\d){not_other_unit}"),
            re.compile(
                r"(?<![\d.,/])(?P<n>(?:3[4-9]|4[0-3])[.,]\d{1,2}|(?:9[3-9]|1[01]\d)\.\d{1,2})(?![\d/])" + not_other_unit
            ),
        ]
        self._temp_cue_before = re.compile(rf"\b(?:{t_cues})\b[^\d.!?;]*$")
        self._temp_bare = re.compile(r"(?<![\d.,/])(?P<n>\d{2,3}(?:[.,]\d{1,2})?)(?![\d/])" + not_other_unit)
        pnum = r"(?P<n>10|[0-9](?:\.5)?|zero|one|two|three|four|five|six|seven|eight|nine|ten)"
        self._pain = [
            re.compile(rf"(?<![\d.,]){pnum}\s*(?:/|out\s+of|outta|of|on|sur|over|on\s+a\s+scale\s+of)\s*(?:10|ten)\b"),
            re.compile(rf"\b(?:{p_cues})\b[^\d.!?;]{{0,16}}?\b{pnum}\b(?![.,]\d){not_other_unit}"),
            re.compile(rf"\b(?:{p_digit_cues})\s+(?P<n>10|[0-9](?:\.5)?)\b(?![.,]\d){not_other_unit}"),
        ]
        self._pain_bare = re.compile(rf"(?<![\d.,/])\b{pnum}\b(?![.,]\d){not_other_unit}")
        # "a 4 at breakfast, 6 at lunch, 8 now": more scores right after one already read
        self._pain_next = re.compile(
            rf"[^.!?\d]{{0,25}}?(?<![\d.,/])\b(?P<n>10|[0-9](?:\.5)?)\b(?![.,]\d){not_other_unit}"
        )
        self._pain_prev = re.compile(rf"\b(?:a|was|at|an)\s+(?P<n>10|[0-9](?:\.5)?)\b(?![.,]\d){not_other_unit}")
        tail = rf"(?P<m>{QTY})?\s*(?P<u>hours?|hrs?|h|minutes?|mins?)\b"
        self._pads = [
            # "3 pads in 2 hours", "a pad in the last hour", "2 pads within an hour"
            (
                "per",
                re.compile(
                    rf"{BELOW}\b(?P<n>{QTY})\s+(?:\w+\s+){{0,2}}?{PADS}\s+(?:\w+\s+){{0,2}}?(?:in|within|over|during)\s+(?:the\s+)?(?:last\s+|past\s+|first\s+)?{ABOUT}{tail}"
                ),
            ),
            # "pad full in 40 mins", "soaked a pad within about an hour", "went through 2 pads in an hour"
            (
                "per",
                re.compile(
                    rf"\b{PADS}\s+(?:\w+\s+){{0,1}}?(?:full|soaked|filled|drenched|ruined|through)\s+(?:in|within)\s+{ABOUT}{tail}"
                ),
            ),
            (
                "per",
                re.compile(
                    rf"\b(?:filled|soaked|ruined|drenched|went\s+through|gone\s+through|got\s+through|changed|used|needed)\s+(?P<n>{QTY})\s+(?:\w+\s+){{0,1}}?{PADS}\s+(?:in|within)\s+(?:the\s+)?(?:last\s+|past\s+)?{ABOUT}{tail}"
                ),
            ),
            # "a pad an hour", "two pads per hour", "one pad each hour"
            (
                "each",
                re.compile(
                    rf"{BELOW}\b(?P<n>{QTY})\s+(?:\w+\s+){{0,2}}?{PADS}\s+(?:an|a|per|each|every)\s+(?P<u>hour|hr|h)\b"
                ),
            ),
            # "a pad every 30 minutes", "changing my pad every hour"
            ("every", re.compile(rf"{PADS}\s+(?:\w+\s+){{0,2}}?(?:every|each)\s+{tail}")),
            # "every hour I need a new pad"
            ("every", re.compile(rf"\b(?:every|each)\s+{tail}\s*(?:\w+\s+){{0,4}}?{PADS}")),
            # "changed my pad twice in the last hour", "filled a pad three times in 2 hours"
            (
                "times",
                re.compile(
                    rf"\b{PADS}\s+(?P<n>twice|two\s+times|three\s+times|\d+\s+times|{QTY}\s+times)\s+(?:in|within|over)\s+(?:the\s+)?(?:last\s+|past\s+)?{ABOUT}{tail}"
                ),
            ),
            # "a pad lasts me 2 hours", "one pad lasts about 3 hrs"
            (
                "lasts",
                re.compile(
                    rf"\b(?P<n>{QTY})\s+{PADS}\s+(?:only\s+)?(?:lasts?|lasting|is\s+lasting)\s+(?:me\s+)?(?:about\s+|around\s+|maybe\s+)?{tail}"
                ),
            ),
        ]
        self._pads_bare = re.compile(
            rf"{BELOW}(?<![\d.,/])\b(?P<n>{ANSWER_QTY})\b(?!\s*(?:/|out\s+of|days?|weeks?|°|degrees))"
        )
        dur_unit = r"(?P<u>days?|dys|dyas|dayz|daze|d|weeks?|wks?|nights?|hours?|hrs?|months?|fortnight)\b"
        # "it's been days", "for days now": several days, read as three (the safer, longer reading)
        self._days_vague = re.compile(
            r"\b(?:for|been|over|since|in)\s+(?:days|days\s+and\s+days|ages|a\s+few\s+days)\b"
        )
        self._duration = re.compile(rf"(?<![\d.,/])\b(?P<n>{QTY})\s*-?\s*{dur_unit}(?P<ago>\s+ago)?")
        self._duration_a = re.compile(
            r"\b(?:(?:a|one|the|all\s+the|all|over\s+a|nearly\s+a|almost\s+a)\s+(?P<u>week|fortnight|month)\b"
            r"|^\W*(?P<u2>week|fortnight|month)\s+(?:on|later|now|since|after)\b)(?P<ago>\s+ago)?"
        )
        self._day_n = re.compile(
            rf"\bday\s+(?P<n>\d{{1,2}}|{_WORDS})\b|\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)\s+day\b|"
            r"\b(?P<o>second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth)\s+day\b"
        )
        self._since = re.compile(
            r"\b(?:since|from)\s+(?P<when>yesterday|last\s+night|this\s+morning|today|"
            r"the\s+weekend|the\s+day\s+before\s+yesterday|last\s+week|" + "|".join(WEEKDAYS) + r")\b"
        )
        self._when_word = re.compile(
            r"\b(?P<when>yesterday|last\s+night|this\s+morning|today|last\s+week|"
            r"the\s+day\s+before\s+yesterday|" + "|".join(WEEKDAYS) + r")\b"
        )
        self._procedure = re.compile(rf"\b(?:{proc})\b")
        # "the test was at 9 this morning", "test at 10, cramps a 2 out of 10": a time, not a score
        self._clock_before = re.compile(rf"\b(?:{proc})\b\s+(?:\w+\s+){{0,2}}?(?:at|@|for|by)\s*$")
        clock = r"(?P<h>\d{1,2})(?:[:.](?P<mi>\d{2}))?\s*(?P<ap>am|pm|a\.m\.|p\.m\.)"
        anchors = "|".join(sorted(ANCHOR_HOURS, key=len, reverse=True)).replace(" ", r"\s+")
        # "4 pads since breakfast (like 3 hours ago)": the time said as hours ago
        self._hours_ago = re.compile(
            rf"(?:\(\s*|\b)(?:like|about|around|roughly|maybe|only|just|that's|thats|so)?\s*(?P<m>{QTY})\s*(?:hours?|hrs?)(?:\s+ago\b|\s*\))"
        )
        self._pads_since_re = re.compile(
            rf"\b(?P<n>{QTY})\s+(?:\w+\s+){{0,2}}?{PADS}\s+(?:since|from)\s+(?:(?P<anchor>{anchors})|{clock})"
        )
        # "since 2pm I've used 5 pads", "from lunchtime I've gone through 3 towels"
        self._since_pads_re = re.compile(
            rf"\b(?:since|from)\s+(?:(?P<anchor>{anchors})|{clock})\W+(?:\w+\W+){{0,5}}?"
            rf"(?:used|gone\s+through|been\s+through|went\s+through|got\s+through|changed|soaked|filled|needed|on)\s+"
            rf"(?:my\s+)?(?P<n>{QTY})\s+(?:\w+\s+){{0,2}}?{PADS}"
        )
        # "it's only half 5", "now quarter to 9"
        self._now_half_re = re.compile(
            r"\b(?:it'?s|its|it\s+is|now)\s+(?:(?:only|just|nearly|about|gone|past|after|almost)\s+){0,3}"
            r"(?P<part>half(?:\s+past)?|quarter\s+past|quarter\s+to)\s+(?P<h>\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\b"
        )
        self._until_re = re.compile(
            r"\b(?:until|till|til|to|and)\s+(?P<h>\d{1,2})(?:[:.](?P<mi>\d{2}))?\s*"
            r"(?P<ap>am|pm|a\.m\.|p\.m\.)?(?!\s*(?:days?|hours?|hrs?|weeks?|pads?|mins?|minutes?))"
        )
        self._now_re = re.compile(
            r"\b(?:it'?s|its|it\s+is|now)\s+(?:(?:only|just|nearly|about|gone|past|after|almost)\s+){0,3}"
            r"(?P<h>\d{1,2})(?:[:.](?P<mi>\d{2}))?\s*(?P<ap>am|pm|a\.m\.|p\.m\.)?(?!\s*(?:days?|hours?|weeks?|pads?))"
        )
        self._on_the = re.compile(rf"\b(?:{proc})\b[^.!?]{{0,30}}?\bon\s+the\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)\b")
        self._today_is = re.compile(r"\btoday\s+(?:is|'s)\s+the\s+(?P<d>\d{1,2})(?:st|nd|rd|th)\b")

    # ---------------------------------------------------------------------------------------
    def read(self, text: str, expecting: str | None = None, now: _dt.datetime | None = None) -> list[ValueMention]:
        now = now or _dt.datetime.now()
        low = _lower_same_length(text)
        found: list[ValueMention] = []
        found += self._temperatures(low, expecting == "temperature")
        found += self._pain_scores(low, expecting == "pain_score", taken=found)
        found += self._pads_rates(low, expecting == "pads_per_hour", taken=found)
        found += self._pads_at_times(low, taken=found)
        found += self._pads_since(low, now, taken=found)
        found += self._days(low, expecting == "days_since_procedure", self._today(low, now.date()), taken=found)
        return sorted(found, key=lambda v: v.start)

    # -- temperatures ------------------------------------------------------------------------
    def _temperature(self, m: re.Match, unit: str | None) -> ValueMention | None:
        value = number(m.group("n"))
        if value is None:
            return None
        if unit is None:
            if self.c_range[0] <= value <= self.c_range[1]:
                unit = "C"
            elif self.f_range[0] <= value <= self.f_range[1]:
                unit = "F"
            else:
                return None
        lo, hi = self.c_range if unit == "C" else self.f_range
        if not lo <= value <= hi:
            return None
        shown = f"{m.group('n')} {'°C' if unit == 'C' else '°F'}"
        return ValueMention("temperature", value, m.start("n"), m.end(), shown, unit)

    def _temperatures(self, low: str, expecting: bool) -> list[ValueMention]:
        """Every reading in the message (the highest decides). Readings listed with slashes,
        "37.4 / 38.0 / 37.6", are read as a list, not as fractions (same length, same offsets)."""
        low = _READING_SLASH.sub(lambda m: m.group(1) + ",", low)
        out: list[ValueMention] = []
        for m in DIGITS_POINT.finditer(low):  # "38 point 5", "101 dot 2"
            value = float(m.group("n")) + int(m.group("d")) / 10
            unit = (
                "C"
                if self.c_range[0] <= value <= self.c_range[1]
                else ("F" if self.f_range[0] <= value <= self.f_range[1] else None)
            )
            if unit:
                out.append(
                    ValueMention(
                        "temperature", value, m.start(), m.end(), f"{value:g} {'°C' if unit == 'C' else '°F'}", unit
                    )
                )
        for m in SPELLED_TEMPERATURE.finditer(low):
            value = spelled_temperature(m)
            cued = (
                self._temp_cue_before.search(low[max(0, m.start() - 30) : m.start()])
                or re.match(r"\s*(?:degrees?|°)", low[m.end() :])
                or m.group("dec")
                or expecting
            )
            unit = (
                "C"
                if self.c_range[0] <= value <= self.c_range[1]
                else ("F" if self.f_range[0] <= value <= self.f_range[1] else None)
            )
            if cued and unit:
                out.append(
                    ValueMention(
                        "temperature", value, m.start(), m.end(), f"{value:g} {'°C' if unit == 'C' else '°F'}", unit
                    )
                )
        patterns = list(self._temp) + ([self._temp_bare] if expecting else [])
        for i, pat in enumerate(patterns):
            for m in pat.finditer(low):
                if any(v.start <= m.start("n") < v.end for v in out):
                    continue
                unit = None
                if i == 0:
                    unit = "F" if m.group("u").startswith("f") else "C"
                v = self._temperature(m, unit)
                if v:
                    out.append(v)
        return out

    # -- pain scores -------------------------------------------------------------------------
    def _clock_time(self, low: str, start: int, end: int) -> bool:
        """The time of the test ("the test was at 9", "HSG at 10"), not a pain score. Only with the
        procedure named: "pain at 9 this morning" stays a score (the safer reading)."""
        return bool(self._clock_before.search(low[max(0, start - 40) : start]))

    def _pain_scores(self, low: str, expecting: bool, taken: list[ValueMention]) -> list[ValueMention]:
        out: list[ValueMention] = []
        m: re.Match[str] | None
        patterns = list(self._pain) + ([self._pain_bare] if expecting else [])
        for pat in patterns:
            for m in pat.finditer(low):
                s = m.start("n")
                if any(v.start <= s < v.end for v in taken + out) or self._clock_time(low, s, m.end("n")):
                    continue
                value = number(m.group("n"))
                if value is not None and 0 <= value <= 10:
                    out.append(ValueMention("pain_score", value, s, m.end(), m.group(0).strip()))
        first = min(out, key=lambda v: v.start, default=None)
        if first is not None:
            # "was a 3 this morning, more like a 6 now": a score said just before the first one read
            # (same sentence, "a"/"was"/"at" before it), so the rise can be seen
            window = low[max(0, first.start - 40) : first.start]
            base = first.start - len(window)
            prev = [
                p
                for p in self._pain_prev.finditer(window)
                if not self._clock_time(low, base + p.start("n"), base + p.end("n"))
            ]
            if prev and not re.search(r"[.!?;]", window[prev[-1].end() :]):
                m = prev[-1]
                out.append(
                    ValueMention("pain_score", float(m.group("n")), base + m.start("n"), base + m.end(), m.group("n"))
                )
        for v in sorted(out, key=lambda v: v.start):
            end = v.end
            while True:
                m = self._pain_next.match(low, end)
                if m is None or any(t.start <= m.start("n") < t.end for t in taken + out):
                    break
                out.append(ValueMention("pain_score", float(m.group("n")), m.start("n"), m.end(), m.group("n")))
                end = m.end()
        return out

    # -- pads --------------------------------------------------------------------------------
    def _pads_rates(self, low: str, expecting: bool, taken: list[ValueMention]) -> list[ValueMention]:
        out: list[ValueMention] = []
        for _kind, pat in self._pads:
            for m in pat.finditer(low):
                if any(v.start <= m.start() < v.end or m.start() <= v.start < m.end() for v in out):
                    continue
                if _LOOKING.search(low[max(0, m.start() - 24) : m.start()]):
                    continue  # "keeps checking her pads every hour" counts looks, not pads
                hours = (number(m.group("m")) if m.groupdict().get("m") else 1.0) or 1.0
                hours *= 1 / 60 if m.group("u").startswith("m") else 1.0
                count = _times(m.group("n")) if m.groupdict().get("n") else 1.0
                if count is None or hours <= 0:
                    continue
                if m.groupdict().get("below"):
                    count = max(0.0, count - 0.5)
                rate = count / hours
                out.append(ValueMention("pads_per_hour", round(rate, 2), m.start(), m.end(), m.group(0).strip()))
        if expecting and not out:
            for m in self._pads_bare.finditer(low):
                if any(v.start <= m.start() < v.end for v in taken):
                    continue
                count = number(m.group("n"))
                if count is not None:
                    if m.group("below"):
                        count = max(0.0, count - 0.5)
                    out.append(ValueMention("pads_per_hour", count, m.start(), m.end(), m.group(0).strip()))
                    break
        return out

    # -- durations and days since the test ---------------------------------------------------
    def _near_procedure(self, low: str, start: int, end: int) -> bool:
        window = low[max(0, start - 40) : min(len(low), end + 40)]
        return bool(self._procedure.search(window))

    def _days(self, low: str, expecting: bool, today: _dt.date, taken: list[ValueMention]) -> list[ValueMention]:
        out: list[ValueMention] = []
        m: re.Match[str] | None

        def add(days: float, start: int, end: int, since_procedure: bool):
            if any(v.start <= start < v.end for v in taken + out):
                return
            kind = "days_since_procedure" if since_procedure else "duration_days"
            out.append(ValueMention(kind, round(days, 3), start, end, low[start:end].strip()))

        for m in self._duration.finditer(low):
            n = number(m.group("n"))
            unit = m.group("u")
            if n is None or unit not in UNIT_DAYS or (unit == "d" and not m.group("n").isdigit()):
                continue
            add(n * UNIT_DAYS[unit], m.start(), m.end(), expecting or self._near_procedure(low, m.start(), m.end()))
        for m in self._days_vague.finditer(low):
            add(3.0, m.start(), m.end(), expecting or self._near_procedure(low, m.start(), m.end()))
        for m in self._duration_a.finditer(low):
            add(
                UNIT_DAYS[m.group("u") or m.group("u2")],
                m.start(),
                m.end(),
                expecting or self._near_procedure(low, m.start(), m.end()),
            )
        m = self._on_the.search(low)
        if m:
            told = self._today_is.search(low)
            today_d = int(told.group("d")) if told else today.day
            proc_d = int(m.group("d"))
            if 1 <= proc_d <= 31 and 1 <= today_d <= 31:
                back = today_d - proc_d if today_d >= proc_d else today_d + 31 - proc_d
                add(float(back), m.start(), m.end(), True)
        for m in self._day_n.finditer(low):
            n = ORDINALS[m.group("o")] if m.group("o") else number(m.group("n") or m.group("d"))
            if n is not None:
                add(n, m.start(), m.end(), True)
        for m in self._since.finditer(low):
            add(
                self._days_back(m.group("when"), today),
                m.start(),
                m.end(),
                self._near_procedure(low, m.start(), m.end()),
            )
        if expecting or self._procedure.search(low):
            for m in self._when_word.finditer(low):
                if expecting or self._near_procedure(low, m.start(), m.end()):
                    add(self._days_back(m.group("when"), today), m.start(), m.end(), True)
        if expecting and not out:
            m = re.search(rf"(?<![\d.,/])\b(?P<n>\d{{1,2}}|{_ANSWER_WORDS})\b", low)
            if m and (answer := number(m.group("n"))) is not None:
                add(answer, m.start(), m.end(), True)
        return out

    # -- "changed pads at 7, 7:40, 8:20 and now again" ------------------------------------------
    def _pads_at_times(self, low: str, taken: list[ValueMention]) -> list[ValueMention]:
        """Pad changes listed by clock time: the changes between the first and last time said,
        over that span (two changes in 80 minutes is 1.5 an hour)."""
        if any(v.kind == "pads_per_hour" for v in taken):
            return []
        m = _PAD_TIMES.search(low)
        if not m:
            return []
        times = [t for t in (_clock_of(item) for item in _CLOCK_ITEM.findall(m.group("times"))) if t is not None]
        for i in range(1, len(times)):
            while times[i] <= times[i - 1]:  # "11:30, 12:10, 1" runs past noon
                times[i] += 12
        if len(times) < 2 or times[-1] - times[0] <= 0:
            return []
        rate = (len(times) - 1) / max(times[-1] - times[0], 0.5)
        return [ValueMention("pads_per_hour", round(rate, 2), m.start(), m.end(), m.group(0).strip())]

    # -- "4 pads since lunch and it's only 3pm" --------------------------------------------------
    def _pads_since(self, low: str, now: _dt.datetime, taken: list[ValueMention]) -> list[ValueMention]:
        if any(v.kind == "pads_per_hour" for v in taken):
            return []
        m = self._pads_since_re.search(low) or self._since_pads_re.search(low)
        if not m:
            return []
        start = _clock_hours(m, ANCHOR_HOURS)
        # "from 2pm until 5pm I changed 4 pads": the span's own end, not the time of reading
        until = self._until_re.search(low, m.start("n") if m.start() < m.start("n") - 40 else m.start(), m.end() + 30)
        said_now = until or self._now_re.search(low, m.end())
        half = self._now_half_re.search(low, m.end())
        end = _clock_hours(said_now, {}) if said_now else now.hour + now.minute / 60
        if half:
            said_now, end = half, _part_hours(half)
        ago = self._hours_ago.search(low[: m.end() + 40], m.end())
        count = number(m.group("n"))
        if ago and (ago_hours := number(ago.group("m"))) and count is not None and not said_now:
            rate = count / max(ago_hours, 0.5)
            return [ValueMention("pads_per_hour", round(rate, 2), m.start(), m.end(), m.group(0).strip())]
        if said_now and not said_now.groupdict().get("ap") and start is not None and end is not None and end < start:
            end += 12  # "since 10am, it's 11:30" / "since 9pm, it's 10"
        count = number(m.group("n"))
        if start is None or end is None or count is None or end <= start:
            return []
        rate = count / max(end - start, 0.5)
        return [ValueMention("pads_per_hour", round(rate, 2), m.start(), m.end(), m.group(0).strip())]

    @staticmethod
    def _today(low: str, today: _dt.date) -> _dt.date:
        """The patient's own today when the message names it ("it's Tuesday night now"), so that
        "the HSG was Monday" counts from it, not from the day the message is read."""
        m = _TODAY_IS.search(low)
        if not m:
            return today
        said = WEEKDAYS.index(m.group("day"))
        return today - _dt.timedelta(days=(today.weekday() - said) % 7)

    @staticmethod
    def _days_back(when: str, today: _dt.date) -> float:
        when = " ".join(when.split())
        fixed = {
            "yesterday": 1,
            "last night": 1,
            "this morning": 0,
            "today": 0,
            "the weekend": 2,
            "the day before yesterday": 2,
            "last week": 7,
        }
        if when in fixed:
            return float(fixed[when])
        back = (today.weekday() - WEEKDAYS.index(when)) % 7
        return float(back or 7)
