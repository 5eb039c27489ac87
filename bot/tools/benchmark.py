"""Time the triage engine per message on one core (`make benchmark`; not a test).

Messages: the project's own test cases (tests/triage/cases, holdout), each triaged REPEAT times
after a warm-up; reports median, p95 and max in milliseconds.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
REPEAT = 5


def messages():
    out = []
    for path in sorted((ROOT / "tests" / "triage" / "cases").glob("*.yml")):
        out += [c["text"] for c in yaml.safe_load(path.read_text())]
    holdout = ROOT / "tests" / "triage" / "sets" / "holdout" / "holdout.jsonl"
    out += [json.loads(line)["text"] for line in holdout.read_text().splitlines() if line.strip()]
    return out


def main() -> int:
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
        core = f"pinned to CPU {min(os.sched_getaffinity(0))}"
    except (AttributeError, OSError):
        core = "not pinned (no sched_setaffinity)"
    # the engine never needs it
    sys.modules.setdefault("tensorflow", None)  # type: ignore[arg-type]  # a None entry blocks the import (typeshed allows modules only)
    start = time.perf_counter()
    from bot.triage import engine

    eng = engine()
    load = time.perf_counter() - start
    texts = messages()
    for t in texts:
        eng.triage(t)
    times = []
    for _ in range(REPEAT):
        for t in texts:
            s = time.perf_counter()
            eng.triage(t)
            times.append((time.perf_counter() - s) * 1000)
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    print(f"triage engine: {len(texts)} messages x {REPEAT}, {core}")
    print(f"  start-up (load knowledge, compile patterns): {load:.2f} s")
    print(f"  per message: median {statistics.median(times):.2f} ms, p95 {p95:.2f} ms, max {times[-1]:.2f} ms")
    long_text = "I have mild cramps and some spotting. " * 500
    s = time.perf_counter()
    eng.triage(long_text)
    print(f"  one {len(long_text)}-character message: {(time.perf_counter() - s) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
