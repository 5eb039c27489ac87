"""The triage safety gate on the clinician's dev vignettes (`python -m bot.tools.gates`).

Scores the triage engine with the same rules as the vignettes' score.py:
  accuracy               the level is one of the levels the clinician accepts
  red-flag sensitivity   messages whose accepted levels are all urgent or emergency that got at least
                         urgent
  emergency sensitivity  messages whose only accepted level is emergency that got emergency
  under- / over-triage   the level is below the least / above the most urgent accepted level
The gate passes when red-flag and emergency sensitivity are both 1.000. The vignettes are read
where they live (tests/support/paths.py finds them) and are never copied into this repository.

    from bot.tools.gates import vignette_gate
    result = vignette_gate()                 # the shipped knowledge
    result = vignette_gate(TriageEngine(knowledge_base.load(folder)))
    assert result.ok, result.message()

`score_rows` scores any rows in the same shape ({"id", "text", "level", "accept"}); `make evaluate`
uses it for the project's own case sets too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

RANK = {"info": 0, "self_care": 1, "routine": 2, "urgent": 3, "emergency": 4}
LEVELS = tuple(RANK)
ROOT = Path(__file__).resolve().parents[2]


def vignettes_dir() -> Path | None:
    """Where the shared vignettes are: HSG_VIGNETTES_DIR, ../shared beside this checkout, or
    beside the main workspace (CI runs from a fresh clone elsewhere)."""
    candidates = [os.environ.get("HSG_VIGNETTES_DIR"), ROOT.parent / "shared" / "vignettes", "/work/shared/vignettes"]
    for c in candidates:
        if c and (Path(c) / "dev.jsonl").exists():
            return Path(c)
    return None


def default_path() -> Path | None:
    found = vignettes_dir()
    return found / "dev.jsonl" if found else None


@dataclass
class Failure:
    id: str
    gold: str  # the accepted levels, "urgent/emergency"
    got: str  # the engine's level (or "ERROR: ..." when it raised)
    text: str
    red_flag: bool = False  # a red flag (gold urgent or emergency) that got less than urgent
    emergency: bool = False  # an emergency that got less than emergency

    @property
    def safety(self) -> bool:
        return self.red_flag or self.emergency


@dataclass
class LevelScore:
    n: int = 0
    correct: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 1.0


@dataclass
class GateResult:
    source: str
    n: int = 0
    correct: int = 0
    under: int = 0
    over: int = 0
    redflag_n: int = 0
    redflag_hit: int = 0
    emergency_n: int = 0
    emergency_hit: int = 0
    failures: list[Failure] = field(default_factory=list)
    per_level: dict[str, LevelScore] = field(default_factory=dict)  # by gold level

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 1.0

    @property
    def redflag_sensitivity(self) -> float:
        return self.redflag_hit / self.redflag_n if self.redflag_n else 1.0

    @property
    def emergency_sensitivity(self) -> float:
        return self.emergency_hit / self.emergency_n if self.emergency_n else 1.0

    @property
    def under_triage(self) -> float:
        return self.under / self.n if self.n else 0.0

    @property
    def over_triage(self) -> float:
        return self.over / self.n if self.n else 0.0

    @property
    def ok(self) -> bool:
        """The safety gate: every red flag and every emergency caught (1.000 on both)."""
        return self.n > 0 and self.redflag_hit == self.redflag_n and self.emergency_hit == self.emergency_n

    @property
    def missed(self) -> list[Failure]:
        """The failures that break the gate (a red flag or an emergency under-triaged)."""
        return [f for f in self.failures if f.safety]

    def summary(self) -> str:
        """One line in score.py's format."""
        return (
            f"n={self.n} accuracy={self.accuracy:.3f} "
            f"redflag_sensitivity={self.redflag_sensitivity:.3f} ({self.redflag_hit}/{self.redflag_n}) "
            f"emergency_sensitivity={self.emergency_sensitivity:.3f} "
            f"({self.emergency_hit}/{self.emergency_n}) under_triage={self.under_triage:.3f} "
            f"over_triage={self.over_triage:.3f}"
        )

    def message(self) -> str:
        """What a person reads when the gate fails (or passes): every missed message by id."""
        lines = [f"{'PASS' if self.ok else 'FAIL'}: triage safety gate on {self.source}", self.summary()]
        if self.n == 0:
            lines.append("no vignettes were scored")
        if self.missed:
            lines.append(f"{len(self.missed)} red flag(s) missed (the gate needs every one):")
            lines += [f"  {f.id}: gold {f.gold}, got {f.got}: {f.text}" for f in self.missed]
        other = [f for f in self.failures if not f.safety]
        if other:
            lines.append(f"{len(other)} other miss(es) (not gating):")
            lines += [f"  {f.id}: gold {f.gold}, got {f.got}: {f.text}" for f in other]
        return "\n".join(lines)

    def headline(self) -> dict[str, float]:
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "redflag_sensitivity": round(self.redflag_sensitivity, 4),
            "emergency_sensitivity": round(self.emergency_sensitivity, 4),
            "under_triage": round(self.under_triage, 4),
            "over_triage": round(self.over_triage, 4),
            "failures": len(self.failures),
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        d["per_level"] = {
            k: {"n": v.n, "correct": v.correct, "accuracy": v.accuracy} for k, v in self.per_level.items()
        }
        d.update(self.headline(), ok=self.ok)
        return d


def score_rows(rows: Iterable[dict], engine=None, source: str = "") -> GateResult:
    """Triage each row's text and score it against its accepted levels (score.py's rules).

    An engine error counts as a miss at every level it could have been (never as a hit)."""
    if engine is None:
        from bot.triage import engine as default_engine

        engine = default_engine()
    result = GateResult(source=source)
    for row in rows:
        accept = list(row.get("accept") or [row["level"]])
        gold_level = row.get("level") or accept[0]
        lo = min(RANK[a] for a in accept)
        hi = max(RANK[a] for a in accept)
        try:
            got = engine.triage(row["text"]).level
        except Exception as e:  # a crash must show as a miss, not stop the scoring
            got = f"ERROR: {type(e).__name__}: {e}"
        result.n += 1
        level_score = result.per_level.setdefault(gold_level, LevelScore())
        level_score.n += 1
        rank = RANK.get(got)
        red_flag = lo >= RANK["urgent"]
        emergency = accept == ["emergency"]
        missed_red = red_flag and (rank is None or rank < RANK["urgent"])
        missed_em = emergency and got != "emergency"
        if red_flag:
            result.redflag_n += 1
            result.redflag_hit += not missed_red
        if emergency:
            result.emergency_n += 1
            result.emergency_hit += not missed_em
        if got in accept:
            result.correct += 1
            level_score.correct += 1
        else:
            result.failures.append(
                Failure(
                    id=str(row.get("id")),
                    gold="/".join(accept),
                    got=got,
                    text=row["text"],
                    red_flag=missed_red,
                    emergency=missed_em,
                )
            )
        if rank is None or rank < lo:
            result.under += 1
        elif rank > hi:
            result.over += 1
    result.per_level = {lvl: result.per_level[lvl] for lvl in LEVELS if lvl in result.per_level}
    return result


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def vignette_gate(engine=None, path: os.PathLike | None = None) -> GateResult:
    """Score the engine (default: the shipped knowledge) on the dev vignettes (default: found by
    vignettes_dir()). Raises FileNotFoundError when the vignettes are not on this machine."""
    path = Path(path) if path else default_path()
    if path is None or not path.exists():
        raise FileNotFoundError(f"the dev vignettes are not on this machine ({path or 'HSG_VIGNETTES_DIR'})")
    return score_rows(read_jsonl(path), engine=engine, source=str(path))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.tools.gates", description="The triage safety gate on the dev vignettes."
    )
    parser.add_argument("--vignettes", metavar="FILE", help="gold JSON lines (default: the shared dev.jsonl)")
    parser.add_argument("--knowledge", metavar="DIR", help="a knowledge folder (default: the shipped one)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    # the engine never needs it (spaCy would import it)
    sys.modules.setdefault("tensorflow", None)  # type: ignore[arg-type]  # a None entry blocks the import (typeshed allows modules only)
    engine = None
    if args.knowledge:
        from bot.triage import TriageEngine, knowledge_base

        engine = TriageEngine(knowledge_base.load(Path(args.knowledge)))
    try:
        result = vignette_gate(engine, args.vignettes)
    except FileNotFoundError as e:
        # CI sets HSG_REQUIRE_VIGNETTES=1 so a missing set fails there; a developer machine
        # without the shared folder is told loudly (the project's own case sets still gate).
        print(f"triage safety gate: {e}", file=sys.stderr)
        if os.environ.get("HSG_REQUIRE_VIGNETTES") == "1":
            return 2
        print("triage safety gate SKIPPED: the dev vignettes are not on this machine", file=sys.stderr)
        return 0
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.message())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
