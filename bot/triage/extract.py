"""Find symptom mentions and how they are said, with spaCy and medspaCy.

Pipeline (built once, reused for every message):
  blank English tokenizer -> word norms (abbreviations, spelling corrections) -> sentencizer
  -> medspaCy matcher over the knowledge file's phrasings (targets)
  -> value mentions (numbers) added as targets too
  -> medspaCy ConText with the rules of context.yml (negation, hypothetical, other person, ...)
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import spacy
from medspacy.context import ConText, ConTextRule
from medspacy.context.context_graph import ConTextGraph
from medspacy.context.context_modifier import ConTextModifier
from spacy.tokens import Doc, Span
from wordfreq import zipf_frequency

from .knowledge_base import CLASS_LEVEL, Knowledge
from .matching import ConceptMatcher
from .model import RANK
from .phrasing import PhrasingCompiler
from .spelling import SpellingCorrector
from .text import clean, segments
from .values import ValueMention, ValueReader

log = logging.getLogger(__name__)

if not Doc.has_extension("triage_targets"):
    Doc.set_extension("triage_targets", default=None)
if not Doc.has_extension("dangling_cues"):
    Doc.set_extension("dangling_cues", default=())

DANGLING_CATEGORIES = ("SEVERE", "WORSENING")
FUNCTION_WORD_ZIPF = 5.5  # "then", "and", "the": too common to be what a misspelling meant


@dataclass
class Mention:
    """A concept or value found in the text, with the ConText categories that modify it."""

    concept: str | None  # concept id, or None for a value
    start: int  # character offsets in the cleaned message
    end: int
    text: str
    sentence: int  # index of the sentence (across segments)
    categories: frozenset[str] = frozenset()
    value: ValueMention | None = None
    corrected: dict[str, str] = field(default_factory=dict)  # misspelling -> word read
    sentence_text: str = ""  # the sentence it was said in

    @property
    def reading(self) -> ValueMention:
        """The value of a value mention (concept None), which always has one."""
        assert self.value is not None, "not a value mention"
        return self.value


@dataclass
class Extraction:
    mentions: list[Mention]
    # Severity / worsening cues that modified no symptom ("today they're way worse"), by sentence.
    dangling: list[tuple[str, int]]
    english_ratio: float  # share of words that are English (or known to the knowledge files)
    words: int
    norms: str = ""  # the words as read (lower case, spelling corrected), for the classifier


class TargetAwareConText(ConText):
    """medspaCy's ConText, dropping cue matches that overlap a symptom *before* scopes are set.

    Stock ConText (1.0) limits each cue's scope by the other cues first and only then drops cues
    that overlap a target; a dropped cue ("could" inside "couldn't breathe") has by then already
    cut short the scope of a real one ("if I couldn't breathe"). Same algorithm, other order.
    A cue that runs into the start of a symptom ("scared of being" + "being sick") is cut back
    to end where the symptom starts, so it still reaches it. Cues that set the scene (SETTINGS)
    keep their whole reach: terminating cues do not shorten them.
    """

    def __call__(self, doc, targets: str | None = None):
        target_spans: Sequence[Span] = getattr(doc._, targets) if targets else doc.ents
        graph = ConTextGraph(prune_on_modifier_overlap=False)
        graph.targets = target_spans
        spans = [(t.start, t.end) for t in target_spans]
        graph.modifiers = []
        inside: list[tuple[Span, ConTextModifier]] = []
        for match_id, start, end in self._ConText__matcher(doc):
            rule = self._ConText__matcher.rule_map[self.nlp.vocab[match_id].text]
            overlapping = [(t_start, t_end) for t_start, t_end in spans if start < t_end and t_start < end]
            host = next((t for t in target_spans if t.start <= start and end <= t.end), None)
            if host is not None and rule.category.upper() in WITHIN_TARGET:
                # a cue that says how or where, inside the symptom's own phrase ("left side is
                # killing me", "passed out on the table for a few seconds"), is that symptom's
                inside.append((host, ConTextModifier(rule, start, end, doc, max_scope=self.max_scope)))
                continue
            if overlapping:
                # a hypothetical cue of three words or more that ends one word into a symptom
                # ("scared of being" + "being sick") still reaches it; any other cue inside a
                # symptom ("not" of "doesn't smell right", of "not making sense") is its own word
                first = min(t for t, _ in overlapping)
                if rule.category.upper() != "HYPOTHETICAL" or first - start < 2 or end - first > 1:
                    continue
                end = first
            modifier = ConTextModifier(rule, start, end, doc, max_scope=self.max_scope)
            if rule.direction.upper() == "BACKWARD":
                # "wee burns, cramps are gone": a cue looking back stops at the clause's comma
                commas = [t.i for t in doc[modifier._scope_start : start] if t.text in (",", ";", "-")]
                if commas:
                    modifier._scope_start = max(modifier._scope_start, commas[-1] + 1)
            graph.modifiers.append(modifier)
        settings = {id(m): m.scope_span for m in graph.modifiers if m.category in SETTINGS}
        graph.update_scopes()
        for m in graph.modifiers:
            if id(m) in settings:
                m._scope_start, m._scope_end = settings[id(m)]
        _apply_terminations(graph.modifiers)
        graph.apply_modifiers()
        doc._.dangling_cues = [m for m in graph.modifiers if m.num_targets == 0]
        for target, modifier in graph.edges + inside:
            target._.modifiers += (modifier,)
        doc._.context_graph = graph
        return doc


# Cues that set the scene for the whole stretch they reach (where and when it happened): a comma
# or "but" does not end them ("right after, when I sat up, I got lightheaded, but the nurse...").
SETTINGS = ("DURING_PROCEDURE", "HISTORICAL", "RELAPSED")
# Cues that still qualify a symptom when they stand inside its matched phrase.
WITHIN_TARGET = ("SEVERE", "DURING_PROCEDURE")


def _apply_terminations(modifiers) -> None:
    """Cut every cue's reach at the first terminating cue ("but", ";") on its side.

    medspaCy 1.0 checks that two scopes overlap before letting a terminating cue limit another,
    and its overlap test misses a scope that lies wholly inside the other: so a cue with a
    max_words reach ("him", 8 words) was never stopped by "but" ("lovely of him but I threw up").
    """
    terms = [m for m in modifiers if m.direction.upper() == "TERMINATE"]
    for m in modifiers:
        direction = m.direction.upper()
        if direction == "TERMINATE" or m.category in SETTINGS:
            continue
        start, end = m.modifier_span
        for t in terms:
            t_start, t_end = t.modifier_span
            if direction in ("FORWARD", "BIDIRECTIONAL") and end <= t_start < m._scope_end:
                m._scope_end = t_start
            if direction in ("BACKWARD", "BIDIRECTIONAL") and m._scope_start < t_end <= start:
                m._scope_start = t_end


class GeneralQuestions:
    """Tells a general question about a symptom from a report (context.yml general_questions).

    "is it bad to get a fever after this?" asks; "is it normal that I'm still spotting?" reports.
    The clause holding the symptom asks when it opens with a question word ("the discharge is
    oily??" reports, however many question marks); it is general when the sentence has no reporter word
    (the patient, someone close, now, still, "this" pointing at a symptom), no reading, and no
    other sentence reports it back ("Because I've had them all morning").
    """

    _CLAUSE_BREAK = re.compile(r"[,;:]|\s-\s|\bbut\b|\bbecause\b|\bcos\b")

    def __init__(self, words: Mapping[str, Sequence[str]]):
        deictic = [w for w in ("this", "these") if w in words["reporter_words"]]
        reporters = [w for w in words["reporter_words"] if w not in deictic]
        names = _alternation(words.get("this_names_the_test") or ("test",))
        # "this"/"these" report unless they name the test: "after this?", "one of these", "this test"
        this = "".join(
            rf"|(?<!after\s)(?<!before\s)(?<!of\s)\b{w}\b(?!\s*(?:{names})\b)(?!\s*[?.!,]|\s*$)" for w in deictic
        )
        self._reporter = re.compile(rf"\b(?:{_alternation(reporters)})\b{this}")
        self._anaphor = re.compile(rf"\b(?:{_alternation(words.get('anaphors') or ('it',))})\b")
        self._first_person = re.compile(rf"\b(?:{_alternation(words.get('first_person') or ('i',))})\b")
        own = words.get("own_test") or ()
        self._own_test = re.compile(rf"\b(?:{_alternation(own)})\b") if own else None
        others = words.get("not_the_patient") or ()
        self._someone_else = re.compile(rf"\b(?:{_alternation(others)})\b") if others else None
        self._opener = re.compile(
            rf"^\W*{_FILLERS}(?:{_alternation(words['openers'])})\s"
        )  # "can " asks, "can't" reports

    def asks(self, sentence: str, offset: int) -> bool:
        """Whether the clause of `sentence` at character `offset` is a question."""
        low = sentence.lower()
        cuts = [0] + [m.end() for m in self._CLAUSE_BREAK.finditer(low)] + [len(low) + 1]
        start = max(c for c in cuts if c <= offset)
        end = min(c for c in cuts if c > offset)
        clause = low[start:end]
        # a question opens with a question word; a statement with a question mark ("the
        # discharge is kind of oily??") reports and asks for reassurance
        return bool(self._opener.match(clause))

    def own_test(self, sentence: str) -> bool:
        return bool(self._own_test and self._own_test.search(sentence.lower()))

    @staticmethod
    def supposes(sentence: str) -> bool:
        """A sentence that supposes or tells what is usual, not what is happening."""
        return bool(_SUPPOSES.search(sentence.lower()))

    def reports(self, sentence: str) -> bool:
        return bool(self._reporter.search(sentence.lower()))

    def reports_back(self, sentence: str) -> bool:
        low = sentence.lower()
        if self._someone_else is not None and self._someone_else.search(low):
            return False  # "a girl I work with had it": someone else's story
        if self.supposes(low):
            return False  # "...if I'm still bleeding", "my periods are normally heavy"
        return bool(self._first_person.search(low) and self._anaphor.search(low))


_SUPPOSES = re.compile(
    r"\b(?:if|would|will|might|could|in case|normally|usually|always|every month|my periods?|"
    r"scheduled|booked|next week|tomorrow|coming up)\b|'d\b"
)
# "lips? no." "pain: none" "bleeding - nil": the answer right after the sign
# (the answer stands alone: "?? no bleeding" denies the bleeding, not what was asked)
_ANSWERED_NO = re.compile(
    r"^\s*(?:\?+|:|-|=)\s*(?:no|nope|none|nil|nah|negative|not at all|zero|n/a)(?=\s*(?:[.,;!?)]|$))", re.I
)

# words a question may start with before its question word ("Also is it normal...", "So what if...")
_FILLERS = r"(?:(?:also|so|and|but|just|ok|okay|oh|and also|quick question|one more thing|another thing|hi|hey|lol|like|sorry)\W+)*"  # noqa: E501


def _alternation(items: Sequence[str]) -> str:
    return "|".join(r"\s+".join(map(re.escape, w.split())) for w in sorted(items, key=len, reverse=True))


class Extractor:
    def __init__(self, knowledge: Knowledge):
        self.knowledge = knowledge
        self.nlp = spacy.blank("en")
        self.sentencizer = self.nlp.add_pipe(
            "sentencizer", config={"punct_chars": [".", "!", "?", "\n", "\n\n", ";", "!!", "??", "?!", "..."]}
        )
        compiler = PhrasingCompiler(self._literal_norms, knowledge.word_lists)

        vocabulary = set()
        patterns = []
        for concept in knowledge.concepts.values():
            for phrasing in concept.phrasings:
                vocabulary.update(compiler.vocabulary(phrasing))
                patterns += [(concept.id, pattern) for pattern in compiler.compile(phrasing)]
        self.matcher = ConceptMatcher(self.nlp.vocab, patterns)
        self.writer = ConceptMatcher(
            self.nlp.vocab,
            [
                (marker, pattern)
                for marker, phrasings in (
                    ("for_the_patient", knowledge.written_for_the_patient),
                    ("by_the_patient", knowledge.written_by_the_patient),
                    ("test_ahead", knowledge.test_still_ahead),
                    ("test_done", knowledge.test_done),
                )
                for phrasing in phrasings
                for pattern in compiler.compile(phrasing)
            ],
        )
        self._urgency = {
            cid: (99 if c.klass == "not_a_symptom" else RANK[CLASS_LEVEL[c.klass]])
            for cid, c in knowledge.concepts.items()
        }

        # Words that win a spelling tie: a symptom's own words, not the glue between them
        # ("thew" is "threw", not "then")
        symptom_words = {
            w
            for c in knowledge.concepts.values()
            if c.klass != "not_a_symptom"
            for p in c.phrasings
            for w in compiler.vocabulary(p)
            if zipf_frequency(w, "en") < FUNCTION_WORD_ZIPF
        }
        self.context = TargetAwareConText(
            self.nlp, rules=None, span_attrs=None, prune_on_target_overlap=True, input_span_type="ents"
        )
        context_rules = []
        for cue in knowledge.cues:
            vocabulary.update(compiler.vocabulary(cue.cue))
            for pattern in compiler.compile(cue.cue):
                context_rules.append(
                    ConTextRule(
                        literal=cue.cue,
                        category=cue.category.upper(),
                        pattern=pattern,
                        direction=cue.direction,
                        max_scope=cue.max_words,
                    )
                )
        self.context.add(context_rules)

        self.known_words = frozenset(vocabulary)
        self.questions = GeneralQuestions(knowledge.general_questions)
        self.corrector = SpellingCorrector(
            vocabulary, knowledge.never_correct, preferred=symptom_words, other_languages=knowledge.other_languages
        )
        self.values = ValueReader(knowledge.thresholds, knowledge.value_words)

    # -- word norms ---------------------------------------------------------------------------
    def _literal_norms(self, text: str) -> list[str]:
        """A phrasing's words as a patient's message is read (same cleaning, so "co-codamol" in
        the knowledge is "co codamol" as in the message)."""
        return [self.knowledge.abbreviations.get(t.norm_, t.norm_) for t in self.nlp.tokenizer(clean(text)[0])]

    def _set_norms(self, doc: Doc) -> dict[str, str]:
        corrected = {}
        abbreviations = self.knowledge.abbreviations
        for token in doc:
            norm = token.norm_
            if norm in abbreviations:
                token.norm_ = abbreviations[norm]
            elif token.is_alpha and not (token.is_title and not token.is_sent_start and token.i > 0):
                # a capitalised word inside a sentence is a name ("Dr Shalini"), never a misspelling
                fixed = self.corrector.correct(token.lower_)
                if fixed:
                    token.norm_ = fixed
                    corrected[token.text] = fixed
        return corrected

    # -- extraction ---------------------------------------------------------------------------
    def extract(self, text: str, expecting: str | None = None, now: _dt.datetime | None = None) -> Extraction:
        mentions: list[Mention] = []
        dangling: list[tuple[str, int]] = []
        sentence_base = 0
        english = words = 0
        norms: list[str] = []
        writer: set = set()
        for offset, piece in segments(text):
            doc = self.nlp.make_doc(piece)
            corrected = self._set_norms(doc)
            doc = self.sentencizer(doc)
            sentence_of = {}
            for i, sent in enumerate(doc.sents):
                for tok in sent:
                    sentence_of[tok.i] = sentence_base + i
            n_sents = len(list(doc.sents))

            targets = self._targets(doc)
            writer.update(marker for _s, _e, marker in self.writer(doc))
            value_mentions = self.values.read(piece, expecting=expecting, now=now)
            value_spans = []
            for v in value_mentions:
                span = doc.char_span(v.start, v.end, label="VALUE", alignment_mode="expand")
                if span is not None and len(span):
                    value_spans.append((span, v))
            doc._.triage_targets = targets + [s for s, _ in value_spans]
            self.context(doc, targets="triage_targets")

            for mod in doc._.dangling_cues:
                # one-word intensifiers ("really") mean nothing without a symptom next to them
                where = sentence_of.get(mod.modifier_span[0], sentence_base)
                if mod.category in DANGLING_CATEGORIES and (mod.rule.max_scope or 99) > 1:
                    dangling.append((mod.category.lower(), where))
            general = self._general_questions(doc, targets, value_spans)
            for span in targets:
                asked = {"hypothetical", "general_question"} if span.start in general else set()
                mentions.append(
                    Mention(
                        concept=span.label_,
                        start=offset + span.start_char,
                        end=offset + span.end_char,
                        text=span.text,
                        sentence=sentence_of.get(span.start, sentence_base),
                        categories=frozenset(m.category.lower() for m in span._.modifiers) | asked,
                        corrected={k: v for k, v in corrected.items() if k in span.text},
                        sentence_text=span.sent.text,
                    )
                )
            for span, v in value_spans:
                said = piece[v.start : v.end]
                v.start += offset
                v.end += offset
                mentions.append(
                    Mention(
                        concept=None,
                        start=v.start,
                        end=v.end,
                        text=said,
                        sentence=sentence_of.get(span.start, sentence_base),
                        categories=frozenset(m.category.lower() for m in span._.modifiers),
                        value=v,
                        sentence_text=span.sent.text,
                    )
                )
            norms += [tok.norm_ for tok in doc if not tok.is_space]
            for tok in doc:
                if tok.is_alpha and len(tok) > 1:
                    words += 1
                    if (
                        tok.norm_ in self.known_words
                        or zipf_frequency(tok.lower_, "en") >= 2.5
                        or tok.lower_ in self.knowledge.abbreviations
                    ):
                        english += 1
            sentence_base += max(1, n_sents)
        self._answered_no(text, mentions)
        if "test_ahead" in writer and "test_done" not in writer:
            writer.add("before_test")  # "my HSG is next Friday; is a fever bad?": not an after-effect
        writer -= {"test_ahead", "test_done"}
        if writer:  # "writing for my sister ... she is bleeding": she is the patient
            for m in mentions:
                m.categories = m.categories | writer
        mentions.sort(key=lambda m: (m.start, m.end))
        return Extraction(
            mentions=mentions,
            dangling=dangling,
            english_ratio=(english / words) if words else 1.0,
            words=words,
            norms=" ".join(norms),
        )

    @staticmethod
    def _answered_no(text: str, mentions: list[Mention]) -> None:
        """ "swollen lips? no. tongue? no." / "Pain: none": a sign asked and answered no is
        denied (the answer stands in the next sentence, or after a colon)."""
        for m in mentions:
            if m.concept is None:
                continue
            after = text[m.end : m.end + 24]
            if _ANSWERED_NO.match(after):
                m.categories = m.categories | {"negated"}

    def norms(self, text: str) -> str:
        """The words of text as the matcher reads them (lower case, spelling corrected)."""
        doc = self.nlp.make_doc(text)
        self._set_norms(doc)
        return " ".join(t.norm_ for t in doc if not t.is_space)

    def _general_questions(self, doc: Doc, targets: list[Span], value_spans) -> set:
        """Token starts of the targets that sit in a general question (see GeneralQuestions)."""
        sents = list(doc.sents)
        read = {i for i, sent in enumerate(sents) if any(sent.start <= s.start < sent.end for s, _ in value_spans)}
        lasting = {
            i
            for i, sent in enumerate(sents)
            if not self.questions.supposes(sent.text)
            and any(sent.start <= s.start < sent.end and v.kind == "duration_days" for s, v in value_spans)
        }
        out = set()
        for span in targets:
            i = next(k for k, sent in enumerate(sents) if sent.start <= span.start < sent.end)
            sent = sents[i]
            if (
                i in read
                or self.questions.reports(sent.text)
                or not self.questions.asks(sent.text, span.start_char - sent.start_char)
            ):
                continue
            if any(self.questions.reports_back(other.text) or k in lasting for k, other in enumerate(sents) if k != i):
                continue  # "...after? been a few hrs": another sentence says how long it has lasted
            if self._urgency[span.label_] == RANK["emergency"] and any(
                self.questions.own_test(other.text) for k, other in enumerate(sents) if k != i
            ):
                continue  # an emergency sign asked about right after her own test is hers
            out.add(span.start)
        return out

    def _targets(self, doc: Doc):
        """Concept spans; overlaps resolved longest first, then words listed as not a symptom
        (an idiom is written to pre-empt the symptom word inside it), then the more urgent."""
        candidates = self.matcher(doc)
        candidates.sort(key=lambda c: (-(c[1] - c[0]), -self._urgency[c[2]], c[0]))
        taken = [False] * len(doc)
        chosen = []
        for start, end, concept in candidates:
            if any(taken[start:end]):
                continue
            for i in range(start, end):
                taken[i] = True
            chosen.append(Span(doc, start, end, label=concept))
        chosen.sort(key=lambda s: s.start)
        return chosen
