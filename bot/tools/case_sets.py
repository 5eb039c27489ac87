"""Independent triage case sets: merge two readers' labels, score a set at first sight.

Protocol (tests/triage/README.md): a writer who sees only the patient guide and clinical-facts.md
writes and labels a set; a second reader who sees only the texts labels it again. `merge` keeps
both labels and settles disagreements on the safer side. `first-sight` scores the merged set
through the CLI, exactly as the held-out sets are scored, BEFORE any change is made from it, and
records that line in tests/triage/sets.yml with the date and commit, where it may never be edited.

    python -m bot.tools.case_sets merge WRITER.jsonl READER.jsonl OUT.jsonl
    python -m bot.tools.case_sets first-sight NAME --writer W --reader R --voice "..."
    python -m bot.tools.case_sets score                  # every registered set, now (tuned scores)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from bot.triage.model import LEVELS, RANK

ROOT = Path(__file__).resolve().parents[2]
SETS_DIR = ROOT / "tests" / "triage" / "sets"
REGISTRY = ROOT / "tests" / "triage" / "sets.yml"


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _floor(row: dict) -> int:
    return min(RANK[a] for a in row["accept"])


def merge_row(writer: dict, reader: dict) -> dict:
    """Both readers' labels, disagreements settled on the safer (more urgent) side.

    The lowest acceptable level is the higher of the two floors, so a message that either reader
    calls a red flag with nothing lower acceptable stays a red flag; the best level is the more
    urgent of the two; anything either reader accepts at or above the floor stays acceptable.
    """
    floor = max(_floor(writer), _floor(reader))
    level = max(writer["level"], reader["level"], key=RANK.__getitem__)
    accept = {a for a in list(writer["accept"]) + list(reader["accept"]) if RANK[a] >= floor} | {level}
    return {
        "id": writer["id"],
        "text": writer["text"],
        "level": level,
        "accept": sorted(accept, key=RANK.__getitem__, reverse=True),
        "why": writer.get("why", ""),
        "why_second_reader": reader.get("why", ""),
        "agreed": writer["level"] == reader["level"] and _floor(writer) == _floor(reader),
    }


def kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa of two readers' best levels."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    expected = sum((a.count(lv) / n) * (b.count(lv) / n) for lv in LEVELS)
    return (observed - expected) / (1 - expected) if expected < 1 else 1.0


def merge(writer_path: Path, reader_path: Path, out_path: Path) -> dict[str, float]:
    writer = read_jsonl(writer_path)
    reader = {r["id"]: r for r in read_jsonl(reader_path)}
    missing = [w["id"] for w in writer if w["id"] not in reader]
    if missing:
        raise SystemExit(f"the second reader has no label for {len(missing)} ids, e.g. {missing[:5]}")
    rows = [merge_row(w, reader[w["id"]]) for w in writer]
    with open(out_path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    w_levels = [w["level"] for w in writer]
    r_levels = [reader[w["id"]]["level"] for w in writer]
    red = [(_floor(w) >= RANK["urgent"], _floor(reader[w["id"]]) >= RANK["urgent"]) for w in writer]
    return {
        "n": len(rows),
        "level_agreement": sum(x == y for x, y in zip(w_levels, r_levels)) / len(rows),
        "kappa": kappa(w_levels, r_levels),
        "red_flag_agreement": sum(x == y for x, y in red) / len(rows),
        "moved_up": sum(RANK[row["level"]] > RANK[w["level"]] for row, w in zip(rows, writer)),
    }


def score_line(gold_path: Path, rules_only: bool = False) -> tuple[str, list[str]]:
    """Score through the CLI, the way held-out sets are scored: (summary line, failure lines)."""
    cmd = [sys.executable, "-m", "bot", "triage", "--jsonl", str(gold_path)] + (["--rules-only"] if rules_only else [])
    pred = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    rows = read_jsonl(gold_path)
    got = {p["id"]: p["level"] for p in map(json.loads, pred.splitlines())}
    return summarise(rows, got)


def summarise(rows: list[dict], got: dict[str, str]) -> tuple[str, list[str]]:
    """The same figures as ../shared/vignettes/score.py."""
    correct = under = over = rf_n = rf_hit = em_n = em_hit = 0
    failures = []
    for g in rows:
        level = got[g["id"]]
        lo, hi = _floor(g), max(RANK[a] for a in g["accept"])
        correct += level in g["accept"]
        under += RANK[level] < lo
        over += RANK[level] > hi
        if lo >= RANK["urgent"]:
            rf_n += 1
            rf_hit += RANK[level] >= RANK["urgent"]
        if g["accept"] == ["emergency"]:
            em_n += 1
            em_hit += level == "emergency"
        if level not in g["accept"]:
            failures.append(f"  {g['id']}: gold {'/'.join(g['accept'])} got {level}: {g['text']}")
    n = len(rows)
    line = (
        f"n={n} accuracy={correct / n:.3f} redflag_sensitivity={(rf_hit / rf_n if rf_n else 1):.3f} "
        f"({rf_hit}/{rf_n}) emergency_sensitivity={(em_hit / em_n if em_n else 1):.3f} ({em_hit}/{em_n}) "
        f"under_triage={under / n:.3f} over_triage={over / n:.3f} missing=0"
    )
    return line, failures


def registry() -> dict:
    reg = (yaml.safe_load(REGISTRY.read_text(encoding="utf-8")) if REGISTRY.exists() else None) or {}
    return {**reg, "sets": reg.get("sets") or []}


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "bot"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() + ("+uncommitted" if dirty.stdout.strip() else "")


def first_sight(name: str, writer: Path, reader: Path, voice: str) -> int:
    """Bring a sealed set in, merge its labels, score it once and record the line for good."""
    reg = registry()
    if any(s["name"] == name for s in reg["sets"]):
        raise SystemExit(f"{name} is already registered: a set is scored at first sight only once")
    folder = SETS_DIR / name
    if folder.exists():
        raise SystemExit(f"{folder} exists already")
    # Scored from outside tests/triage/sets: the learned second opinion trains on every set in
    # there, and a set must be scored by a model that has never seen it.
    with tempfile.TemporaryDirectory() as staging:
        staged = Path(staging) / f"{name}.jsonl"
        stats = merge(writer, reader, staged)
        line, failures = score_line(staged)
        rules_line, _ = score_line(staged, rules_only=True)
        (folder / "labels").mkdir(parents=True)
        (folder / "labels" / "writer.jsonl").write_bytes(writer.read_bytes())
        (folder / "labels" / "reader.jsonl").write_bytes(reader.read_bytes())
        shutil.copyfile(staged, folder / f"{name}.jsonl")
    print("\n".join(failures))
    print(line)
    print(f"rules only: {rules_line}")
    entry = {
        "name": name,
        "voice": voice,
        "labels": {k: round(v, 3) for k, v in stats.items()},
        "first_sight": {
            "date": dt.date.today().isoformat(),
            "engine": _commit(),
            "line": line,
            "rules_only": rules_line,
        },
    }
    with open(REGISTRY, "a", encoding="utf-8") as f:
        f.write(_entry_yaml(entry))
    return 0


def _entry_yaml(entry: dict) -> str:
    text = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True, width=200)
    return "".join("  " + line + "\n" for line in text.splitlines())


def score_all() -> int:
    for entry in registry()["sets"]:
        path = SETS_DIR / entry["name"] / f"{entry['name']}.jsonl"
        line, _ = score_line(path)
        print(f"{entry['name']:>10} now:         {line}")
        if entry.get("first_sight"):
            print(f"{'':>10} first sight: {entry['first_sight']['line']}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("merge")
    m.add_argument("writer", type=Path)
    m.add_argument("reader", type=Path)
    m.add_argument("out", type=Path)
    f = sub.add_parser("first-sight")
    f.add_argument("name")
    f.add_argument("--writer", type=Path, required=True, help="the writer's labelled set (JSON lines)")
    f.add_argument("--reader", type=Path, required=True, help="the second reader's labels")
    f.add_argument("--voice", required=True, help="who wrote it, in what voice")
    sub.add_parser("score")
    a = ap.parse_args(argv)
    if a.cmd == "merge":
        stats = merge(a.writer, a.reader, a.out)
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()))
        return 0
    if a.cmd == "first-sight":
        return first_sight(a.name, a.writer, a.reader, a.voice)
    return score_all()


if __name__ == "__main__":
    sys.exit(main())
