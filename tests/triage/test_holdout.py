"""The independent sets (tests/triage/holdout, holdout2): safety gates over each whole set.

Their authors saw only clinical-facts.md, not the engine or the other sets. The first score of
each, before any change made from it, is recorded in its README.
"""
import json
from pathlib import Path

RANK = {"info": 0, "self_care": 1, "routine": 2, "urgent": 3, "emergency": 4}
import pytest

HERE = Path(__file__).parent
SETS = {"holdout": HERE / "holdout" / "holdout.jsonl", "holdout2": HERE / "holdout2" / "holdout2.jsonl"}


@pytest.mark.parametrize("name", sorted(SETS))
def test_holdout_red_flags_and_accuracy(engine, name):
    rows = [json.loads(line) for line in SETS[name].read_text().splitlines() if line.strip()]
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
