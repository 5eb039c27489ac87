"""From mentions to a decision: which findings count, what each calls for, the level.

The rules here are generic; every clinical specific (classes, windows, escalators, thresholds,
combinations) comes from the knowledge files. Safety rules of the product:
  * the most urgent finding wins; one red flag outweighs any number of expected effects;
  * when a fact that could raise the level is unknown, the level is not lowered for it;
  * a symptom that is reported (even in question form) counts; a hypothetical or someone else's
    past does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypedDict

from .extract import Extraction, Mention
from .knowledge_base import CLASS_LEVEL, CONTEXT_MODIFIERS, Knowledge
from .model import RANK, Context, Decision, Finding, Values, more_urgent

# words that start a new episode after one at the clinic ("fainted again at home")
_NEW_EPISODE = re.compile(
    r"\b(?:again|at home|since|tonight|this evening|later|after i left|after leaving|"
    r"now|today|yesterday|last night|this morning|got home|once home)\b"
)


def _sentence_of(text: str, offset: int) -> str:
    start = max(text.rfind(c, 0, offset) for c in ".!?\n") + 1
    ends = [i for i in (text.find(c, offset) for c in ".!?\n") if i >= 0]
    return text[start : min(ends) if ends else len(text)]


# words of a sentence that supposes rather than reports ("would I", "if I get", "going to")
_SUPPOSING = re.compile(r"\b(?:will|would|might|could|should|if|going to|gonna|in case|what happens)\b")

# ConText categories kept on a finding for the decision and the nurse (the others are flags),
# and the extractor's own mark for a general question about a symptom
MODIFIERS = (*CONTEXT_MODIFIERS, "general_question")


def _fmt(x: float) -> str:
    return f"{x:g}"


_TOLD_NOW = re.compile(
    r"^\s*(?:i'?ve\s+|i\s+|she'?s\s+|she\s+|but\s+)?(?:got|have|having|had|there'?s|there\s+is|it'?s|its|"
    r"mine'?s|mine\s+is|still)\b[^.!?]{0,40}?\b(?:today|now|tonight|this\s+morning|right\s+now|atm|"
    r"at\s+the\s+moment|since)\b",
    re.I,
)


def _asked_then_told(text: str, end: int) -> bool:
    """A question about a symptom answered at once by the patient's own report of it, with no
    symptom word of its own: "How long will the discharge last? Got a fair bit today"."""
    q = text.find("?", end)
    if q < 0 or re.search(r"[.!]", text[end:q]):
        return False
    return bool(_TOLD_NOW.search(text[q + 1 :]))


class _Flags(TypedDict):
    """How a mention was said: the flag fields of Finding, passed to it as keyword arguments."""

    negated: bool
    hypothetical: bool
    other_experiencer: bool
    proxy: bool
    historical: bool


class Decider:
    def __init__(self, knowledge: Knowledge):
        self.k = knowledge
        # values.yml thresholds: numbers (and [low, high] ranges) as YAML read them
        self.t: dict[str, Any] = knowledge.thresholds
        self._yes = self._answer_pattern(knowledge.answers.get("affirmative", ()))
        self._no = self._answer_pattern(knowledge.answers.get("negative", ()))
        self._now = self._answer_pattern(knowledge.value_words.get("now_words", ()))

    @staticmethod
    def _answer_pattern(words: Iterable[str]) -> re.Pattern | None:
        words = sorted(words, key=len, reverse=True)
        if not words:
            return None
        return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.I)

    # -- flags --------------------------------------------------------------------------------
    @staticmethod
    def _flags(m: Mention) -> _Flags:
        c = m.categories
        # who wrote it (context.yml written_for/by_the_patient): "she" is the patient when the
        # message is written for her, someone else when the patient writes of her own test
        proxy = "proxy" in c or ("for_the_patient" in c and "other_person" in c and "historical" not in c)
        by_patient = "by_the_patient" in c and "for_the_patient" not in c
        other = ("someone_else" in c and not proxy) or (
            "other_person" in c and not proxy and (by_patient or ("past" in c and "ongoing" not in c))
        )
        return {
            "negated": "negated" in c,
            "hypothetical": "hypothetical" in c,
            "other_experiencer": other,
            "proxy": proxy or ("other_person" in c and not other),
            "historical": "historical" in c,
        }

    def _said_now(self, text: str, start: int) -> bool:
        """A now-word ("now", "at the moment") just before a value: the value is the current one."""
        assert self._now is not None  # values.yml lists now_words
        return bool(self._now.search(text[max(0, start - 18) : start]))

    def _before_the_test(self, m: Mention, klass: str) -> bool:
        """The test is still ahead (context.yml test_still_ahead) and the sentence asks or
        supposes ("is a fever bad? is it 37.5 or 38?", "what would I do if..."): a worry, not
        an after-effect. A statement ("last night I was sick twice"), anything happening now and
        an emergency sign always count."""
        if "before_test" not in m.categories or klass == "emergency_sign":
            return False
        sentence = (m.sentence_text or "").lower()
        assert self._now is not None  # values.yml lists now_words
        if self._now.search(sentence):
            return False
        return sentence.rstrip().endswith("?") or bool(_SUPPOSING.search(sentence))

    def _finding(self, m: Mention) -> Finding:
        assert m.concept is not None  # called for concept mentions only
        concept = self.k.concepts[m.concept]
        mods = sorted(c for c in m.categories if c in MODIFIERS)
        flags = self._flags(m)
        flags["hypothetical"] = flags["hypothetical"] or self._before_the_test(m, concept.klass)
        if concept.lasting:
            flags["historical"] = False  # "positive test last week": still pregnant now
        f = Finding(
            concept=concept.id,
            name=concept.name,
            klass=concept.klass,
            text=m.text,
            start=m.start,
            end=m.end,
            modifiers=mods,
            **flags,
        )
        if m.corrected:
            f.values["read_as"] = dict(m.corrected)
        f.values["_sentence"] = m.sentence
        return f

    def _implicit(self, concept_id: str, m: Mention) -> Finding:
        concept = self.k.concepts[concept_id]
        f = Finding(
            concept=concept.id,
            name=concept.name,
            klass=concept.klass,
            text=m.text,
            start=m.start,
            end=m.end,
            **self._flags(m),
        )
        f.values["_sentence"] = m.sentence
        f.values["implied_by"] = m.reading.kind
        return f

    def _takes(self, f: Finding, value_kind: str) -> bool:
        concept = self.k.concepts.get(f.concept)
        return bool(concept and concept.takes(value_kind))

    # -- thresholds ---------------------------------------------------------------------------
    def _is_fever(self, value: float, unit: str | None) -> bool:
        limit = self.t["fever_celsius"] if unit == "C" else self.t["fever_fahrenheit"]
        return value >= float(limit)

    def _threshold_text(self) -> str:
        return f"{_fmt(self.t['fever_celsius'])} C / {_fmt(self.t['fever_fahrenheit'])} F"

    # -- main ---------------------------------------------------------------------------------
    def decide(self, ex: Extraction, context: Context, text: str, notes: list[str]) -> Decision:
        findings: list[Finding] = []
        value_mentions: list[Mention] = []
        for m in ex.mentions:
            if m.concept is not None:
                findings.append(self._finding(m))
            else:
                flags = self._flags(m)
                if (
                    flags["hypothetical"]
                    or flags["other_experiencer"]
                    or flags["historical"]
                    or self._before_the_test(m, "measurement")
                ):
                    continue
                if m.reading.kind in ("pain_score", "pads_per_hour") and (
                    flags["negated"] or "during_procedure" in m.categories
                ):
                    continue  # "it's not a 7", "during the test it was an 8": not now
                value_mentions.append(m)

        for f in findings:  # "How long will the discharge last? Got a fair bit today."
            if (
                f.hypothetical
                and not (f.negated or f.other_experiencer or f.historical)
                and _asked_then_told(text, f.end)
            ):
                f.hypothetical = False
        current = [f for f in findings if f.counts]
        self._same_episode_at_the_clinic(current, text)
        present = {f.concept for f in current}
        for f in list(current):
            explained_by = [c for c in self.k.concepts[f.concept].yields_to if c in present]
            # a cold room or nerves explain mild shivering, not "violent" shaking; thrush
            # explains its itch however itchy
            circumstance = explained_by and self.k.concepts[explained_by[0]].klass == "not_a_symptom"
            if explained_by and not (circumstance and {"severe", "worsening"} & set(f.modifiers)):
                f.values["read_as_part_of"] = explained_by[0]
                current.remove(f)
        earlier = [
            Finding.from_dict(f.to_dict()) if isinstance(f, Finding) else Finding.from_dict(f)
            for f in context.earlier_findings
        ]
        for f in earlier:
            f.from_earlier = True
        values = Values(days_since_procedure=context.days_since_procedure)
        revisited: list[Finding] = []  # earlier findings that this message gives new facts about

        # -- temperatures
        temps = [m.reading for m in value_mentions if m.reading.kind == "temperature"]
        fever_readings = [v for v in temps if self._is_fever(v.value, v.unit)]
        if temps:
            top = max(temps, key=lambda v: v.value if v.unit == "C" else (v.value - 32) * 5 / 9)
            shown = fever_readings[0] if fever_readings else top
            values.temperature_c = round(shown.value if shown.unit == "C" else (shown.value - 32) * 5 / 9, 1)
            values.temperature_text = shown.text
        fever_like = [f for f in current if self._takes(f, "temperature")]
        if not fever_like and temps:
            fever_like = [f for f in earlier if self._takes(f, "temperature")]
            revisited += fever_like
        fever_concept = self.k.implies.get("fever_reading")
        if fever_readings and fever_concept and fever_concept not in {f.concept for f in fever_like}:
            m = next(mm for mm in value_mentions if mm.value is fever_readings[0])
            f = self._implicit(fever_concept, m)
            current.append(f)
            fever_like.append(f)
        for f in fever_like:
            if temps:
                f.values["temperature"] = (fever_readings or temps)[0].text

        # -- pain scores, pads
        # a score said in a sentence about the test itself ("when the dye went in, the cramp was
        # like a 10") rates that moment, not now, even where the cue did not reach the number
        at_clinic = {f.values.get("_sentence") for f in current if self._settled_at_clinic(f)}
        now_told = {f.values.get("_sentence") for f in current if not self._settled_at_clinic(f)}
        for kind, key in (("pain_score", "pain_score"), ("pads_per_hour", "pads_per_hour")):
            vals = [
                m
                for m in value_mentions
                if m.reading.kind == kind and not (m.sentence in at_clinic and m.sentence not in now_told)
            ]
            if not vals:
                continue
            # a score said beside the symptom it rates wins over one rating something else
            # ("cramps 3/10, netflix 10/10")
            beside = [m for m in vals if any(self._takes(f, key) and abs(f.start - m.start) <= 30 for f in current)]
            best = max(beside or vals, key=lambda mm: mm.reading.value)
            # "7/10 during, now a 2": a low score said as now is the pain now (a severe score
            # earlier that day still counts when the pain now is only moderate)
            said_now = [mm for mm in vals if self._said_now(text, mm.start)]
            settled = float(self.t["severe_pain_score"]) - 4
            if kind == "pain_score" and said_now and said_now[-1].reading.value <= settled:
                best = said_now[-1]
            setattr(values, key, best.reading.value)
            targets = [f for f in current if self._takes(f, key)]
            if not targets:
                targets = [f for f in earlier if self._takes(f, key)]
                revisited += targets
            if not targets and kind in self.k.implies:
                f = self._implicit(self.k.implies[kind], best)
                current.append(f)
                targets = [f]
            for f in targets:
                f.values[key] = best.reading.value
        # (after the scores: a climb with no symptom named rates the pain the scores imply)
        self._pain_trend(value_mentions, current, text)

        # -- durations and days since the test
        day_mentions = [m for m in value_mentions if m.reading.kind == "days_since_procedure"]
        days_since = [m.reading.value for m in day_mentions]
        if days_since:
            values.days_since_procedure = max(days_since)
        for f in current:
            # "Day 1: cramps. Day 2: spotting" -- a day said in the finding's own sentence wins
            own = [m.reading.value for m in day_mentions if m.sentence == f.values.get("_sentence")]
            if own:
                f.values["day_after_test"] = max(own)
        durations = [m for m in value_mentions if m.reading.kind == "duration_days"]
        if durations:
            values.duration_days = max(m.reading.value for m in durations)
        expected_now = [f for f in current if f.klass == "expected_effect"]
        for m in durations:
            # how long something has lasted belongs to what is said beside it ("been practising
            # all week" in a sentence of its own is not about the cramps two sentences away)
            same = [f for f in expected_now if f.values.get("_sentence") == m.sentence]
            near = [f for f in expected_now if abs(f.values.get("_sentence", m.sentence) - m.sentence) <= 1]
            for f in same or near:
                f.values["duration_days"] = max(f.values.get("duration_days", 0), m.reading.value)
        if (durations or days_since) and not expected_now:
            lasting = [f for f in earlier if f.klass == "expected_effect"]
            for f in lasting:
                if durations:
                    f.values["duration_days"] = max(m.reading.value for m in durations)
            revisited += lasting

        # -- severity or worsening said apart from the symptom ("today they're way worse")
        for category, sentence in ex.dangling:
            # "cramps started mild but by teatime they're a lot worse": the cue's own sentence;
            # "Cramps since yesterday. Today they're way worse.": the sentence before, when the
            # cue's names no symptom of its own (a follow-up looks back, never forward:
            # "Horrendous!!! ...the parking. Cramps are fine, bit of spotting")
            own_findings = [f for f in findings if f.values.get("_sentence") == sentence]
            allowed = {sentence} if own_findings else {sentence, sentence - 1}
            targets = [
                f
                for f in current
                if category in self.k.concepts[f.concept].escalates_when
                and f.values.get("_sentence", sentence) in allowed
            ]
            if not targets and not current:
                targets = [f for f in earlier if category in self.k.concepts[f.concept].escalates_when]
                revisited += targets
            for f in targets:
                if category not in f.modifiers:
                    f.modifiers.append(category)

        # -- painkillers answer: only a message about the pain answers the question about the pain
        # ("no fever" after "Do painkillers help?" denies a fever; it is not "no, they don't help")
        if context.expecting == "painkillers_help" and all(
            f.klass == "not_a_symptom" or "not_relieved" in self.k.concepts[f.concept].escalates_when for f in findings
        ):
            pain = [f for f in earlier + current if "not_relieved" in self.k.concepts[f.concept].escalates_when]
            said_no = bool(self._no and self._no.search(text))
            said_yes = bool(self._yes and self._yes.search(text))
            if pain and (said_no or said_yes):
                answer = "not_relieved" if said_no and not said_yes else "relieved"
                for f in pain:
                    if answer not in f.modifiers:
                        f.modifiers.append(answer)
                revisited += pain

        # -- levels
        active = current + [f for f in _unique(revisited) if f not in current]
        for f in active:
            self._assess(f, values, fever_readings, temps)
        for f in findings:
            if not f.counts:
                f.level, f.reason = "info", self._not_counted_reason(f)
            elif "read_as_part_of" in f.values:
                explainer = self.k.concepts[f.values["read_as_part_of"]]
                # explained by the circumstances (a cold room, nerves): still something the
                # patient felt, answered with reassurance, never with "no symptom"
                f.level = explainer.explained_level or "info"
                f.reason = f"read as part of {explainer.name.lower()}"

        level = "info"
        for f in active + [f for f in findings if f.counts and "read_as_part_of" in f.values]:
            level = more_urgent(level, f.level)
        reasons = [
            self._reason_line(f) for f in sorted(active, key=lambda f: -RANK[f.level]) if RANK[f.level] > RANK["info"]
        ]
        level, combo_reasons = self._combinations(active, earlier, level)
        reasons = combo_reasons + reasons
        if temps and not fever_readings and not fever_like:
            # A normal reading on its own: the patient checked; no fever by reading (clinical facts:
            # a reading given to reassure is not a fever); reassure (self-care), note the value.
            m = next(mm for mm in value_mentions if mm.value is temps[0])
            # "is 37.5 a fever?": a question about a reading, answered as a question (info); a
            # reading told ("checked, 36.9, all fine") is still answered with reassurance
            reassuring = level == "info" and (m.sentence_text or "").rstrip().endswith("?")
            f = Finding(
                concept="temperature_reading",
                name="Temperature reading",
                klass="measurement",
                text=m.text,
                start=m.start,
                end=m.end,
                level="info" if reassuring else "self_care",
                reason=f"reading {temps[0].text} is below {self._threshold_text()}: no fever by reading"
                + (", asked about" if reassuring else ""),
                values={"temperature": temps[0].text},
            )
            active.append(f)
            level = more_urgent(level, f.level)
            reasons.append(self._reason_line(f))

        if ex.words >= 2 and ex.english_ratio < 0.5:
            notes.append("the message may not be in English")
        if not text.strip():
            notes.append("empty message")

        listed = {id(f) for f in findings}
        shown_findings = findings + [f for f in active if id(f) not in listed]
        for f in shown_findings:
            f.values.pop("_sentence", None)
        return Decision(
            level=level,
            findings=shown_findings,
            reasons=reasons,
            values=values,
            missing=self._missing(active, level, values),
            notes=notes,
        )

    def _same_episode_at_the_clinic(self, current: list[Finding], text: str) -> None:
        """ "I went out like a light when they blew up the balloon. ... Apparently fainting is
        common.": when a sign that settles at the clinic is told as happening there, its other
        mentions in the message, and the other such signs in the same or the next sentence
        ("she passed out on the table. She went really pale"), are the same episode, unless
        their sentence starts a new one ("again at home", "since", "tonight")."""
        at_clinic = [
            f
            for f in current
            if "during_procedure" in f.modifiers and self.k.concepts[f.concept].during_procedure_level
        ]
        if not at_clinic:
            return
        concepts = {f.concept for f in at_clinic}
        sentences = {f.values.get("_sentence") for f in at_clinic}
        for f in current:
            if "during_procedure" in f.modifiers or not self.k.concepts[f.concept].during_procedure_level:
                continue
            beside = f.values.get("_sentence") in {s + d for s in sentences if s is not None for d in (0, 1)}
            if f.concept in concepts or beside:
                sentence = _sentence_of(text, f.start)
                if not _NEW_EPISODE.search(sentence.lower()):
                    f.modifiers.append("during_procedure")

    def _pain_trend(self, value_mentions: list[Mention], current: list[Finding], text: str) -> None:
        """Scores that climb inside one message ("a 3 this morning, now a 6"): increasing pain
        (clinical facts), a rise of at least pain_rise points to the latest score (the one said
        with "now", else the last one written) from an earlier one."""
        scores = sorted((m for m in value_mentions if m.reading.kind == "pain_score"), key=lambda m: m.start)
        if len(scores) < 2:
            return
        # the latest score is the one nearest a "now" word ("about a 2 now, was a 5 during": the 2)
        assert self._now is not None  # values.yml lists now_words
        nows = [m.start() for m in self._now.finditer(text)]
        near = [(min(abs(n - m.start) for n in nows), m) for m in scores] if nows else []
        near = [(d, m) for d, m in near if d <= 14]
        latest = min(near, key=lambda dm: dm[0])[1] if near else scores[-1]
        earlier = [m.reading.value for m in scores if m is not latest]
        if latest.reading.value - min(earlier) < float(self.t.get("pain_rise", 2)):
            return
        for f in current:
            if "worsening" in self.k.concepts[f.concept].escalates_when and "worsening" not in f.modifiers:
                f.modifiers.append("worsening")

    # -- per finding --------------------------------------------------------------------------
    def _assess(self, f: Finding, values: Values, fever_readings, temps) -> None:
        concept = self.k.concepts[f.concept]
        level = CLASS_LEVEL[concept.klass]
        reason = f"{concept.klass.replace('_', ' ')}"
        if "during_procedure" in f.modifiers and concept.during_procedure_level:
            level = concept.during_procedure_level
            reason = "at the clinic, during or just after the test, and settled there: expected"
        elif concept.klass == "expected_effect":
            esc = concept.escalates_when
            pain = f.values.get("pain_score")
            pads = f.values.get("pads_per_hour")
            why = None
            if (
                "severe" in esc
                and "severe" in f.modifiers
                and not (pain is not None and pain <= float(self.t["severe_pain_score"]) - 3)
            ):
                why = "described as severe"  # (a score of 4 or less says it is not: "SO bad (like a 3)")
            elif "worsening" in esc and "worsening" in f.modifiers:
                why = "getting worse rather than easing"
            elif "not_relieved" in esc and "not_relieved" in f.modifiers:
                why = "not eased by painkillers"
            elif "pain_score" in esc and pain is not None and pain >= float(self.t["severe_pain_score"]):
                why = f"pain {_fmt(pain)}/10, at or above {_fmt(self.t['severe_pain_score'])}/10"
            elif "pads_per_hour" in esc and pads is not None and pads >= float(self.t["heavy_bleeding_pads_per_hour"]):
                why = (
                    f"{_fmt(pads)} pads an hour: heavy bleeding "
                    f"(at or above {_fmt(self.t['heavy_bleeding_pads_per_hour'])} an hour)"
                )
            if why:
                level, reason = "urgent", f"warning sign: {why}"
                if concept.escalates_to:
                    f.values["counts_as"] = concept.escalates_to
            else:
                if "day_after_test" in f.values:
                    known = (f.values.get("duration_days"), f.values["day_after_test"])
                else:
                    known = (f.values.get("duration_days"), values.days_since_procedure)
                elapsed = max([x for x in known if x is not None], default=None)
                window = concept.normal_window_days
                lingering = bool({"lingering", "relapsed"} & set(f.modifiers))
                beyond = elapsed is not None and window is not None and elapsed > window
                if "resolved" in f.modifiers and not (lingering and beyond):
                    # "less than before" on day 7 is still there past its window: not settled
                    reason = "expected after-effect, settling or gone"
                elif "persisting" in f.modifiers and (elapsed is None or window is None or elapsed > 0):
                    level = "routine"
                    reason = "still there and not settling, when it should have eased"
                elif elapsed is not None and window is not None and elapsed > window:
                    level = "routine"
                    reason = (
                        f"lasting or starting {_fmt(round(elapsed, 1))} days after the test, "
                        f"beyond the usual {_fmt(window)} days"
                    )
                else:
                    reason = "expected after-effect"
                    if pain is not None:
                        reason += f" (pain {_fmt(pain)}/10)"
                    if pads is not None:
                        reason += f" ({_fmt(pads)} pads an hour)"
        elif concept.klass == "warning_sign":
            reason = "warning sign"
            reading = concept.defers_to_reading
            pads = f.values.get("pads_per_hour")
            if reading and reading[0] == "temperature" and temps and not fever_readings:
                level = reading[1]
                reason = f"reading {temps[0].text} is below {self._threshold_text()}: no fever by reading"
            elif (
                reading
                and reading[0] == "pads_per_hour"
                and pads is not None
                and pads < float(self.t["heavy_bleeding_pads_per_hour"])
            ):
                level = reading[1]
                reason = (
                    f"more bleeding than expected, but {_fmt(pads)} pads an hour is under the heavy "
                    f"bleeding threshold of {_fmt(self.t['heavy_bleeding_pads_per_hour'])} an hour"
                )
            elif "temperature" in concept.reads and fever_readings:
                reason = f"warning sign: temperature {fever_readings[0].text}, at or above {self._threshold_text()}"
            elif "temperature" in concept.reads and temps:
                reason = (
                    f"warning sign: feels feverish; the reading {temps[0].text} is below "
                    f"{self._threshold_text()}, but feeling hot or shivery counts as a possible fever"
                )
        elif concept.klass == "emergency_sign":
            reason = "emergency sign"
        elif concept.klass == "other_symptom":
            reason = "new symptom not on the expected list"
        else:
            reason = "not a symptom"
        if f.proxy and RANK[level] > RANK["info"]:
            reason += " (reported on the patient's behalf)"
        f.level, f.reason = level, reason

    @staticmethod
    def _not_counted_reason(f: Finding) -> str:
        why = [
            w
            for w, flag in (
                ("negated", f.negated),
                ("hypothetical or general question", f.hypothetical),
                ("about someone else", f.other_experiencer),
                ("before the test / long ago", f.historical),
            )
            if flag
        ]
        return "does not count: " + ", ".join(why)

    @staticmethod
    def _reason_line(f: Finding) -> str:
        src = " (from earlier in the conversation)" if f.from_earlier else ""
        return f"{f.name} ('{f.text}'){src}: {f.reason} -> {f.level}"

    def _settled_at_clinic(self, f: Finding) -> bool:
        return "during_procedure" in f.modifiers and bool(self.k.concepts[f.concept].during_procedure_level)

    def _combinations(self, active: list[Finding], earlier: list[Finding], level: str):
        """Combinations over this message and the conversation so far; an episode that happened
        at the clinic and settled there (a vasovagal faint with pallor) combines with nothing."""
        reasons = []
        now = {c for f in active if not self._settled_at_clinic(f) for c in (f.concept, f.values.get("counts_as")) if c}
        known = now | {
            c
            for f in earlier
            if f.counts and not self._settled_at_clinic(f)
            for c in (f.concept, f.values.get("counts_as"))
            if c
        }
        for combo in self.k.combinations:
            if not combo.holds(known):
                continue
            if not set(combo.concepts) & now:
                continue  # nothing new in this message: the combination was already answered
            reasons.append(f"{combo.name} -> {combo.level}")
            level = more_urgent(level, combo.level)
        return level, reasons

    def _missing(self, active: list[Finding], level: str, values: Values) -> list[str]:
        missing: list[str] = []

        def want(fact: str):
            if fact not in missing:
                missing.append(fact)

        for f in sorted(active, key=lambda f: -RANK[f.level]):
            concept = self.k.concepts.get(f.concept)
            if concept is None:
                continue
            if "temperature" in concept.reads and "temperature" not in f.values:
                want("temperature")
            if RANK[level] >= RANK["urgent"]:
                continue
            if "pads_per_hour" in concept.escalates_when and "pads_per_hour" not in f.values:
                want("pads_per_hour")
            if "pain_score" in concept.escalates_when and "pain_score" not in f.values:
                want("pain_score")
            if "not_relieved" in concept.escalates_when and "not_relieved" not in f.modifiers:
                want("painkillers_help")
            if (
                concept.klass == "expected_effect"
                and "duration_days" not in f.values
                and values.days_since_procedure is None
            ):
                want("days_since_procedure")
        return missing


def _unique(items: list[Finding]) -> list[Finding]:
    seen, out = set(), []
    for f in items:
        if id(f) not in seen:
            seen.add(id(f))
            out.append(f)
    return out
