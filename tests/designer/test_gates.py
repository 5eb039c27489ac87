"""The triage safety gate (bot/tools/gates.py) on the clinician's dev vignettes.

The vignettes are scored where they live and never copied here; these tests only assert on ids and
numbers. A deliberately broken knowledge copy must fail the gate and name what it now misses.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.tools.gates import GateResult, score_rows, vignette_gate
from bot.triage import TriageEngine, knowledge_base

ROOT = Path(__file__).resolve().parents[2]
LEVEL_ORDER = ["info", "self_care", "routine", "urgent", "emergency"]


def reclassify(folder: Path, concept: str, klass: str, window: float) -> None:
    """Edit one concept's class in a knowledge copy, as a careless edit would."""
    path = folder / "concepts.yml"
    text = path.read_text()
    pattern = re.compile(rf"(  - id: {concept}\n    name: [^\n]*\n)    class: \w+\n")
    new, n = pattern.subn(rf"\g<1>    class: {klass}\n    normal_window_days: {window}\n", text)
    assert n == 1, f"concept {concept} not found in the expected layout"
    path.write_text(new)


def engine_from(folder: Path) -> TriageEngine:
    return TriageEngine(knowledge_base.load(folder))


def gold_ids(path: Path, predicate) -> set:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["id"] for r in rows if predicate(r)}


def test_the_shipped_knowledge_passes_the_gate(dev_vignettes_path):
    result = vignette_gate(path=dev_vignettes_path)
    assert result.ok, result.message()
    assert result.redflag_sensitivity == 1.0 and result.emergency_sensitivity == 1.0
    assert result.n > 0 and result.redflag_n > 0 and result.emergency_n > 0
    assert result.message().startswith("PASS")


def test_the_gate_counts_as_score_py_does(dev_vignettes_path, tmp_path):
    """Same numbers as the vignettes' own scorer, on the same predictions."""
    result = vignette_gate(path=dev_vignettes_path)
    pred = subprocess.run([sys.executable, "-m", "bot", "triage", "--jsonl", str(dev_vignettes_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert pred.returncode == 0, pred.stderr
    (tmp_path / "pred.jsonl").write_text(pred.stdout)
    scored = subprocess.run([sys.executable, str(dev_vignettes_path.parent / "score.py"), str(dev_vignettes_path),
                             str(tmp_path / "pred.jsonl"), "--quiet"], capture_output=True, text=True)
    last = scored.stdout.strip().splitlines()[-1]
    assert last == result.summary() + " missing=0"


def test_fever_as_an_expected_effect_fails_the_gate_and_names_the_misses(dev_vignettes_path, knowledge_copy):
    reclassify(knowledge_copy, "fever", "expected_effect", 2)
    result = vignette_gate(engine_from(knowledge_copy), dev_vignettes_path)

    assert result.ok is False
    assert result.redflag_sensitivity < 1.0
    missed = {f.id for f in result.missed}
    assert missed, result.message()
    assert missed <= gold_ids(dev_vignettes_path, lambda r: min(r["accept"], key=LEVEL_ORDER.index) in ("urgent", "emergency"))
    message = result.message()
    assert message.startswith("FAIL")
    for vid in missed:          # every missed vignette is named, with what it got
        assert re.search(rf"^  {re.escape(vid)}: gold \S+, got (self_care|info|routine)", message, re.M), vid


def test_breathing_trouble_as_an_expected_effect_fails_emergency_sensitivity(dev_vignettes_path, knowledge_copy):
    # (fainting alone no longer does: a faint that is hard to wake, or near-fainting with heavy
    # bleeding, is still an emergency through the shock and drowsiness concepts)
    reclassify(knowledge_copy, "breathing_difficulty", "expected_effect", 1)
    result = vignette_gate(engine_from(knowledge_copy), dev_vignettes_path)

    assert result.ok is False
    assert result.emergency_sensitivity < 1.0, result.summary()
    emergencies = gold_ids(dev_vignettes_path, lambda r: r["accept"] == ["emergency"])
    missed_emergencies = {f.id for f in result.missed if f.emergency}
    assert missed_emergencies and missed_emergencies <= emergencies
    message = result.message()
    assert any(vid in message for vid in missed_emergencies)
    assert "red flag(s) missed" in message


def test_the_cli_exits_1_with_a_readable_message_when_the_gate_fails(dev_vignettes_path, knowledge_copy):
    reclassify(knowledge_copy, "fainting", "expected_effect", 1)
    p = subprocess.run([sys.executable, "-m", "bot.tools.gates", "--knowledge", str(knowledge_copy),
                        "--vignettes", str(dev_vignettes_path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=180)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.startswith("FAIL: triage safety gate")
    assert "emergency_sensitivity=" in p.stdout and "red flag(s) missed" in p.stdout


def test_the_cli_exits_0_on_the_shipped_knowledge(dev_vignettes_path):
    p = subprocess.run([sys.executable, "-m", "bot.tools.gates"], cwd=ROOT, capture_output=True, text=True,
                       timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("PASS")



class _Fixed:
    """A stand-in engine that answers from a table (to test the scoring rules alone)."""

    def __init__(self, answers):
        self.answers = answers

    def triage(self, text):
        answer = self.answers[text]
        if isinstance(answer, Exception):
            raise answer
        return type("D", (), {"level": answer})()


def test_scoring_rules_match_score_py():
    rows = [
        {"id": "a", "text": "a", "level": "urgent", "accept": ["urgent", "emergency"]},
        {"id": "b", "text": "b", "level": "emergency", "accept": ["emergency"]},
        {"id": "c", "text": "c", "level": "self_care", "accept": ["self_care"]},
        {"id": "d", "text": "d", "level": "routine", "accept": ["routine", "urgent"]},   # not a red flag
        {"id": "e", "text": "e", "level": "urgent", "accept": ["urgent"]},
    ]
    engine = _Fixed({"a": "emergency", "b": "urgent", "c": "routine", "d": "self_care",
                     "e": RuntimeError("boom")})
    r: GateResult = score_rows(rows, engine, "table")
    assert (r.n, r.correct) == (5, 1)
    assert (r.redflag_hit, r.redflag_n) == (2, 3)           # b got urgent: still a red-flag hit
    assert (r.emergency_hit, r.emergency_n) == (0, 1)
    assert (r.under, r.over) == (3, 1)                      # b, d, e under; c over
    assert not r.ok
    assert {f.id for f in r.missed} == {"b", "e"}
    assert r.per_level["urgent"].n == 2 and r.per_level["urgent"].correct == 1
    assert "e: gold urgent, got ERROR: RuntimeError: boom" in r.message()
