"""What the assistant says in a symptom turn, as plain data (no Rasa import).

`assess` asks the triage engine about the patient's message in the light of what the
conversation already holds; `compose` turns the decision into the reply: the lines from
bot/replies.yml with the clinic's details filled in, the machine-readable payload, at most one
follow-up question (never the same one twice) and the updated memory. The Rasa action only moves
these in and out of the tracker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot import settings
from bot.triage import RANK, Context, Decision, Finding, engine, more_urgent

REPLIES_FILE = Path(__file__).with_name("replies.yml")
QUESTION_ORDER = ("pads_per_hour", "pain_score", "painkillers_help", "temperature", "days_since_procedure")
CHECKLIST = "warning_signs"  # the one-tap list of warning signs after a complaint no list covers
UNLISTED = "unlisted_complaint"
LEARNED_NOTE = "raised by the learned second opinion"
MAX_REMEMBERED = 30  # findings kept in the conversation memory


@lru_cache(maxsize=1)
def replies() -> dict[str, Any]:
    with open(REPLIES_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


@dataclass
class Memory:
    """What the conversation keeps between turns (stored in Rasa slots)."""

    findings: list[dict[str, Any]] = field(default_factory=list)
    days_since_procedure: float | None = None
    expecting: str | None = None
    level: str | None = None  # most urgent level so far in this episode
    asked: list[str] = field(default_factory=list)

    def context(self) -> Context:
        earlier = [Finding.from_dict(f) for f in self.findings]
        return Context(
            days_since_procedure=self.days_since_procedure, earlier_findings=earlier, expecting=self.expecting
        )


@dataclass
class Line:
    text: str
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (title, payload sent back)
    payload: dict[str, Any] | None = None  # the machine-readable decision


@dataclass
class Reply:
    lines: list[Line]
    memory: Memory
    decision: Decision


def assess(text: str, memory: Memory) -> Decision:
    return engine().triage(text, memory.context())


def render(template: str, **values: Any) -> str:
    return template.format(**{**settings.get().clinic.as_slots(), **values})


def summary(findings: list[Finding]) -> str:
    parts: list[str] = []
    for f in findings:
        label = f.name[0].lower() + f.name[1:]
        extra = []
        if "temperature" in f.values:
            extra.append(f"temperature {f.values['temperature']}")
        if "pain_score" in f.values:
            extra.append(f"pain {f.values['pain_score']:g}/10")
        if "pads_per_hour" in f.values:
            extra.append(f"{f.values['pads_per_hour']:g} pads an hour")
        if "duration_days" in f.values:
            extra.append(f"for {f.values['duration_days']:g} days")
        part = label + (f" ({', '.join(extra)})" if extra else "")
        if part not in parts:
            parts.append(part)
    return "; ".join(parts)


def payload(decision: Decision, escalation_id: str | None) -> dict[str, Any]:
    findings = [
        {
            "concept": f.concept,
            "name": f.name,
            "text": f.text,
            "level": f.level,
            "negated": f.negated,
            "hypothetical": f.hypothetical,
            "other_experiencer": f.other_experiencer,
            "proxy": f.proxy,
            "counts": f.counts,
            "from_earlier": f.from_earlier,
            "values": {k: v for k, v in f.values.items() if not k.startswith("_")},
        }
        for f in decision.findings
    ]
    return {
        "triage": {
            "level": decision.level,
            "findings": findings,
            "reasons": decision.reasons,
            "escalation_id": escalation_id,
        }
    }


def _remember(memory: Memory, decision: Decision) -> Memory:
    by_concept = {f["concept"]: f for f in memory.findings}
    for f in decision.findings:
        if f.counts and RANK[f.level] > RANK["info"]:
            d = f.to_dict()
            d["from_earlier"] = False
            by_concept[f.concept] = d
    findings = list(by_concept.values())[-MAX_REMEMBERED:]
    days = decision.values.days_since_procedure
    level = memory.level
    if RANK[decision.level] > RANK["info"]:
        level = more_urgent(level or "info", decision.level)
    return Memory(
        findings=findings,
        days_since_procedure=days if days is not None else memory.days_since_procedure,
        expecting=None,
        level=level,
        asked=list(memory.asked),
    )


def staff_reached() -> bool:
    """Whether an alert reaches a nurse who is not watching the dashboard (Telegram or email is
    configured); only then may the patient read that the nurses were alerted."""
    from bot.escalation.service import PUSH_TARGETS

    return any(t in PUSH_TARGETS for t in settings.get().staff_targets())


def compose(decision: Decision, memory: Memory, intent: str | None = None, escalation_ref: str | None = None) -> Reply:
    """The reply to a symptom turn. escalation_ref: set when the escalation was recorded; the
    answer says the nurses were alerted only if a target reaches them (staff_reached)."""
    r = replies()
    new_memory = _remember(memory, decision)
    active = [f for f in decision.findings if f.counts and RANK[f.level] > RANK["info"]]
    top = [f for f in active if f.level == decision.level] or active
    values = {"summary": summary(top) or "the symptoms in your message", "escalation_ref": escalation_ref or ""}
    data = payload(decision, escalation_ref)
    level = decision.level
    lines: list[Line] = []

    def say(template: str, with_payload: bool = False) -> None:
        lines.append(Line(render(template, **values), payload=data if with_payload else None))

    if level == "emergency":
        say(r["triage"]["emergency"], True)
        say(r["safety_net"]["emergency"])
    elif level == "urgent":
        key = ("urgent_staff_alerted" if staff_reached() else "urgent_staff_listed") if escalation_ref else "urgent"
        say(r["triage"][key], True)
        say(r["safety_net"]["urgent"])
    elif level == "routine":
        say(r["triage"]["routine"], True)
        say(r["safety_net"]["default"])
    elif level == "self_care":
        say(r["triage"]["self_care"], True)
        seen = set()
        for f in active:
            advice = r["advice"].get(f.concept)
            if advice and advice not in seen:
                seen.add(advice)
                say(advice)
        say(r["safety_net"]["default"])
    else:
        asked = _asked_about(decision)
        if "the message may not be in English" in decision.notes:
            say(r["triage"]["not_english"], True)
        elif asked:
            for i, concept in enumerate(asked):
                say(r["about"].get(concept, r["about"]["default"]), i == 0)
        elif any(f.negated for f in decision.findings) or memory.expecting == CHECKLIST:
            say(r["triage"]["none_reported"], True)
        elif memory.expecting and intent in ("dont_know", "deny"):
            say(r["triage"]["ok_not_known"], True)
        elif memory.expecting and intent in ("inform", "affirm"):
            say(r["triage"]["thanks_for_answer"], True)
        else:
            say(r["triage"]["not_understood"], True)
        say(r["safety_net"]["default"])
    if any(n.startswith("truncated") for n in decision.notes):
        say(r["triage"]["too_long"])

    question = CHECKLIST if _wants_checklist(decision, new_memory) else next_question(decision, new_memory)
    if question:
        q = r["questions"][question]
        lines.append(Line(render(q["text"], **values), buttons=[tuple(b) for b in q.get("buttons", [])]))
        new_memory.expecting = question
        new_memory.asked.append(question)
    return Reply(lines, new_memory, decision)


def _asked_about(decision: Decision) -> list[str]:
    """The concepts of a general question ("is it bad to get a fever after this?"), in order."""
    out: list[str] = []
    for f in decision.findings:
        if "general_question" in f.modifiers and f.concept not in out:
            out.append(f.concept)
    return out


def _wants_checklist(decision: Decision, memory: Memory) -> bool:
    """A complaint no list covers (routine): ask once whether any warning sign comes with it."""
    if decision.level != "routine" or CHECKLIST in memory.asked:
        return False
    unlisted = any(f.concept == UNLISTED and f.counts for f in decision.findings)
    return unlisted or LEARNED_NOTE in decision.notes


def procedure_day(text: str, memory: Memory) -> Reply:
    """ "hi, I had my HSG yesterday": a greeting, the day noted, and "how are you feeling?"."""
    decision = assess(text, memory)
    days = decision.values.days_since_procedure
    new_memory = _remember(memory, decision)
    r = replies()["procedure_day"]
    if days is None:
        line = render(r["no_day"])
    else:
        words = (
            {0: "today", 1: "yesterday"}.get(int(days), f"{days:g} days ago")
            if days == int(days)
            else f"{days:g} days ago"
        )
        line = render(r["with_day"], days_text=words)
    return Reply([Line(line)], new_memory, decision)


def next_question(decision: Decision, memory: Memory) -> str | None:
    """The one fact worth asking now: it could change the level and was not asked before."""
    if RANK[decision.level] >= RANK["emergency"]:
        return None
    for fact in sorted(decision.missing, key=lambda f: QUESTION_ORDER.index(f) if f in QUESTION_ORDER else 99):
        if fact not in QUESTION_ORDER or fact in memory.asked:
            continue
        if fact == "days_since_procedure" and memory.days_since_procedure is not None:
            continue
        if RANK[decision.level] >= RANK["urgent"] and fact != "temperature":
            continue
        return fact
    return None


def fallback_lines() -> list[Line]:
    r = replies()
    return [Line(render(r["triage"]["fallback"])), Line(render(r["safety_net"]["default"]))]


def engine_error_lines() -> list[Line]:
    return [Line(render(replies()["triage"]["engine_error"]))]
