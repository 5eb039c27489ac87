"""The independent case sets (tests/triage/sets.yml): safety gates over each whole set.

Each set's authors saw only the patient guide and clinical-facts.md, never the engine or another
set. Its first-sight score, before any change made from it, is recorded in sets.yml; once scored
it is a regression gate here.
"""
import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from bot.triage import RANK

HERE = Path(__file__).parent
REGISTRY = yaml.safe_load((HERE / "sets.yml").read_text())["sets"]
CASES = sorted((HERE / "cases").glob("*.yml"))
# The labels carry no date, but the engine reads weekday and clock words ("the test on Tuesday",
# "4 pads since lunch") against the time of writing. The accuracy gate reads every set at one fixed
# time, so a run on a Wednesday scores as one on a Monday; red flags are checked at several times.
SCORED_AT = dt.datetime(2026, 11, 30, 18, 0)          # a Monday evening, when sets ac and ad were scored
OTHER_TIMES = [dt.datetime(2026, 12, 2, 9, 0), dt.datetime(2026, 12, 5, 21, 30)]   # Wednesday morning, Saturday night


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
        level = engine.triage(row["text"], now=SCORED_AT).level
        correct += level in row["accept"]
        if min(RANK[a] for a in row["accept"]) >= RANK["urgent"]:
            red_flags += 1
            if RANK[level] >= RANK["urgent"]:
                caught += 1
            else:
                misses.append(f"{row['id']}: got {level}: {row['text']}")
    assert caught == red_flags, "red flags missed:\n" + "\n".join(misses)
    assert correct / len(rows) >= 0.95


@pytest.mark.parametrize("when", OTHER_TIMES, ids=lambda t: t.strftime("%a-%H%M"))
def test_red_flags_do_not_depend_on_the_day_or_hour(engine, when):
    missed = [f"{name} {row['id']}: {row['text']}" for name, row in _all_labelled()
              if min(RANK[a] for a in row["accept"]) >= RANK["urgent"]
              and RANK[engine.triage(row["text"], now=when).level] < RANK["urgent"]]
    assert not missed, "\n".join(missed)


def test_every_set_has_its_first_sight_line_and_files():
    for entry in REGISTRY:
        fs = entry.get("first_sight") or {}
        assert fs.get("line", "").startswith("n=") and fs.get("date"), entry["name"]
        assert _rows(entry["name"]), entry["name"]


def test_no_reported_complaint_gets_info(engine):
    """A message whose every acceptable level is above info reports a complaint: never info."""
    wrong = [f"{name} {row['id']}: {row['text']}" for name, row in _all_labelled()
             if min(RANK[a] for a in row["accept"]) > RANK["info"]
             and engine.triage(row["text"], now=SCORED_AT).level == "info"]
    assert not wrong, "\n".join(wrong)
