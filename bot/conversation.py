"""What the assistant says after a symptom message, as plain data (no Rasa import).

`assess` asks the triage engine about the patient's message in the light of what the
conversation already holds; `compose` turns the decision into the reply: response names from the
domain with their values, the machine-readable payload, the follow-up question (at most one per
turn, never the same twice) and the updated memory. The Rasa action only moves these in and out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from bot.triage import RANK, Context, Decision, Finding, engine, more_urgent

# Follow-up questions, in the order they are asked, and the response that asks each.
QUESTIONS = {
    "pads_per_hour": "utter_ask_pads_per_hour",
    "pain_score": "utter_ask_pain_score",
    "painkillers_help": "utter_ask_painkillers_help",
    "temperature": "utter_ask_temperature",
    "days_since_procedure": "utter_ask_days_since_procedure",
}
MAX_REMEMBERED = 30          # findings kept in the conversation memory
ADVICE_FOR = {               # concept -> advice response for expected effects
    "cramping": "utter_advice_cramping",
    "one_sided_pain": "utter_advice_cramping",
    "discharge": "utter_advice_discharge",
    "light_bleeding": "utter_advice_bleeding",
    "dizziness": "utter_advice_dizziness",
    "nausea": "utter_advice_nausea",
    "tiredness": "utter_advice_tiredness",
    "temperature_reading": "utter_advice_temperature_normal",
}


@dataclass
class Memory:
    """What the conversation keeps between turns (stored in Rasa slots)."""

    findings: List[Dict[str, Any]] = field(default_factory=list)
    days_since_procedure: Optional[float] = None
    expecting: Optional[str] = None
    level: Optional[str] = None            # most urgent level so far in this episode
    asked: List[str] = field(default_factory=list)

    def context(self) -> Context:
        earlier = [Finding.from_dict(f) for f in self.findings]
        return Context(days_since_procedure=self.days_since_procedure, earlier_findings=earlier,
                       expecting=self.expecting)


@dataclass
class Utterance:
    response: str
    values: Dict[str, Any] = field(default_factory=dict)
    payload: Optional[Dict[str, Any]] = None


@dataclass
class Reply:
    utterances: List[Utterance]
    memory: Memory
    decision: Decision


def assess(text: str, memory: Memory) -> Decision:
    return engine().triage(text, memory.context())


def _summary(findings: List[Finding]) -> str:
    parts = []
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
        parts.append(label + (f" ({', '.join(extra)})" if extra else ""))
    seen = []
    for p in parts:
        if p not in seen:
            seen.append(p)
    return "; ".join(seen)


def payload(decision: Decision, escalation_id: Optional[str]) -> Dict[str, Any]:
    findings = []
    for f in decision.findings:
        findings.append({
            "concept": f.concept, "name": f.name, "text": f.text, "level": f.level,
            "negated": f.negated, "hypothetical": f.hypothetical,
            "other_experiencer": f.other_experiencer, "proxy": f.proxy, "counts": f.counts,
            "from_earlier": f.from_earlier,
            "values": {k: v for k, v in f.values.items() if not k.startswith("_")},
        })
    return {"triage": {"level": decision.level, "findings": findings, "reasons": decision.reasons,
                       "escalation_id": escalation_id}}


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
    return Memory(findings=findings,
                  days_since_procedure=days if days is not None else memory.days_since_procedure,
                  expecting=None, level=level, asked=list(memory.asked))


def compose(decision: Decision, memory: Memory, intent: Optional[str] = None,
            escalation_id: Optional[str] = None, staff_alerted: bool = False) -> Reply:
    new_memory = _remember(memory, decision)
    active = [f for f in decision.findings if f.counts and RANK[f.level] > RANK["info"]]
    top = [f for f in active if f.level == decision.level] or active
    values = {"summary": _summary(top), "all_findings": _summary(active)}
    data = payload(decision, escalation_id)
    out: List[Utterance] = []
    level = decision.level

    if level == "emergency":
        out.append(Utterance("utter_triage_emergency", values, data))
        out.append(Utterance("utter_safety_net_emergency"))
    elif level == "urgent":
        values["staff_line"] = "staff_alerted" if staff_alerted else "no_staff"
        out.append(Utterance("utter_triage_urgent_alerted" if staff_alerted else "utter_triage_urgent",
                             values, data))
        out.append(Utterance("utter_safety_net_urgent"))
    elif level == "routine":
        out.append(Utterance("utter_triage_routine", values, data))
        out.append(Utterance("utter_safety_net"))
    elif level == "self_care":
        out.append(Utterance("utter_triage_self_care", values, data))
        advice = []
        for f in active:
            name = ADVICE_FOR.get(f.concept)
            if name and name not in advice:
                advice.append(name)
        out.extend(Utterance(a) for a in advice)
        out.append(Utterance("utter_safety_net"))
    else:
        negated = [f for f in decision.findings if f.negated]
        if "the message may not be in English" in decision.notes:
            out.append(Utterance("utter_not_english", {}, data))
        elif negated and not active:
            out.append(Utterance("utter_triage_none_reported", {}, data))
        elif memory.expecting and intent in ("dont_know", "deny"):
            out.append(Utterance("utter_ok_not_known", {}, data))
        else:
            out.append(Utterance("utter_no_symptom_found", {}, data))
        out.append(Utterance("utter_safety_net"))

    question = _next_question(decision, new_memory)
    if question:
        out.append(Utterance(QUESTIONS[question]))
        new_memory.expecting = question
        new_memory.asked.append(question)
    return Reply(out, new_memory, decision)


def _next_question(decision: Decision, memory: Memory) -> Optional[str]:
    if RANK[decision.level] >= RANK["emergency"]:
        return None
    for fact in decision.missing:
        if fact in QUESTIONS and fact not in memory.asked:
            if fact == "days_since_procedure" and memory.days_since_procedure is not None:
                continue
            if RANK[decision.level] >= RANK["urgent"] and fact != "temperature":
                continue
            return fact
    return None
