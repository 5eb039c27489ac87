"""The independent case sets (tests/triage/sets.yml): safety gates over each whole set.

Each set's authors saw only the patient guide and clinical-facts.md, never the engine or another
set. Its first-sight score, before any change made from it, is recorded in sets.yml; once scored
it is a regression gate here.
"""
import json
from pathlib import Path

import pytest
import yaml

from bot.triage import RANK

HERE = Path(__file__).parent
REGISTRY = yaml.safe_load((HERE / "sets.yml").read_text())["sets"]
CASES = sorted((HERE / "cases").glob("*.yml"))


def _rows(name):
    path = HERE / "sets" / name / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _all_labelled():
    for entry in REGISTRY:
        for row in _rows(entry["name"]):
            yield entry["name"], row
    for path in CASES:
        for i, case in enumerate(yaml.safe_load(path.read_text())):
            yield path.stem, {"id": f"{path.stem}-{i}", **case}


@pytest.mark.parametrize("name", [e["name"] for e in REGISTRY])
def test_set_red_flags_and_accuracy(engine, name):
    rows = _rows(name)
    misses, red_flags, caught, correct = [], 0, 0, 0
    for row in rows:
        level = engine.triage(row["text"]).level
        correct += level in row["accept"]
        if min(RANK[a] for a in row["accept"]) >= RANK["urgent"]:
            red_flags += 1
            if RANK[level] >= RANK["urgent"]:
                caught += 1
            else:
                misses.append(f"{row['id']}: got {level}: {row['text']}")
    assert caught == red_flags, "red flags missed:\n" + "\n".join(misses)
    assert correct / len(rows) >= 0.95


def test_every_set_has_its_first_sight_line_and_files():
    for entry in REGISTRY:
        fs = entry.get("first_sight") or {}
        assert fs.get("line", "").startswith("n=") and fs.get("date"), entry["name"]
        assert _rows(entry["name"]), entry["name"]


def test_no_reported_complaint_gets_info(engine):
    """A message whose every acceptable level is above info reports a complaint: never info."""
    wrong = [f"{name} {row['id']}: {row['text']}" for name, row in _all_labelled()
             if min(RANK[a] for a in row["accept"]) > RANK["info"] and engine.triage(row["text"]).level == "info"]
    assert not wrong, "\n".join(wrong)
