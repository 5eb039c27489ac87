"""The second independent set (tests/triage/holdout): safety gates over the whole set.

Its author saw only clinical-facts.md, not the engine or the other sets. The first score, before
any change made from it, is recorded in tests/triage/holdout/README.md.
"""
import json
from pathlib import Path

RANK = {"info": 0, "self_care": 1, "routine": 2, "urgent": 3, "emergency": 4}
ROWS = [json.loads(line) for line in (Path(__file__).parent / "holdout" / "holdout.jsonl").read_text().splitlines()
        if line.strip()]


def test_holdout_red_flags_and_accuracy(engine):
    misses, red_flags, caught, correct = [], 0, 0, 0
    for row in ROWS:
        level = engine.triage(row["text"]).level
        correct += level in row["accept"]
        if min(RANK[a] for a in row["accept"]) >= RANK["urgent"]:
            red_flags += 1
            if RANK[level] >= RANK["urgent"]:
                caught += 1
            else:
                misses.append(f"{row['id']}: got {level}: {row['text']}")
    assert caught == red_flags, "red flags missed:\n" + "\n".join(misses)
    assert correct / len(ROWS) >= 0.95
