"""`make bench-scale`: throughput of `make run-scale` with 1 Rasa instance against 2 (not a test).

Both set-ups use the same stores (PostgreSQL tracker store, Redis lock store, PostgreSQL
escalation database, HAProxy in front), so the ratio measures the second instance alone. Each
round runs CONCURRENT conversations of TURNS messages through the balancer; instances alternate
between rounds. Writes reports/bench/scale.json and scale.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from bot.tools.bench import ROOT, Bot, free_port, load


def scaled_bot(model: Path, instances: int, work: Path) -> tuple[Bot, list[str]]:
    tag = uuid.uuid4().hex[:8]
    dbs = [f"hsg_bench_tracker_{tag}", f"hsg_bench_{tag}"]
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HSG_RASA_PORT": str(port),
        "HSG_WEB_PORT": str(free_port()),
        "HSG_DATA_DIR": str(work / f"var-{instances}"),
        "TRACKER_DB_NAME": dbs[0],
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{dbs[1]}",
    }
    env.pop("TELEGRAM_BOT_TOKEN", None)
    argv = [sys.executable, "-m", "bot", "run-scale", "--model", str(model), "--instances", str(instances)]
    return Bot(f"{instances} instance(s)", argv, ROOT, env, port), dbs


def drop(dbs: list[str]) -> None:
    admin = sa.create_engine("postgresql://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for db in dbs:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    admin.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--turns", type=int, default=40)
    ap.add_argument("--concurrent", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench"))
    a = ap.parse_args()
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"hsg-scale-{uuid.uuid4().hex[:6]}"
    work.mkdir(parents=True)
    bots = {n: scaled_bot(Path(a.model).resolve(), n, work) for n in (1, 2)}
    results: dict[int, list[dict]] = {1: [], 2: []}
    try:
        for bot, _ in bots.values():
            bot.start()
            print(f"{bot.name} ready in {bot.ready_seconds:.1f} s", flush=True)
        for i in range(a.rounds):
            for n in (1, 2) if i % 2 == 0 else (2, 1):
                bot = bots[n][0]
                asyncio.run(load(bot.url, 3, 1))
                r = asyncio.run(load(bot.url, a.turns, a.concurrent))
                print(f"round {i + 1}, {bot.name}: {r['throughput']:.1f} turns/s, p95 {r['p95']:.0f} ms", flush=True)
                results[n].append(r)
        memory = {n: bots[n][0].measure_memory() for n in bots}
    finally:
        for bot, dbs in bots.values():
            bot.stop()
            drop(dbs)
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "rounds": a.rounds,
        "turns": a.turns,
        "concurrent": a.concurrent,
    }
    for n in (1, 2):
        report[f"{n}"] = {
            "throughput": statistics.median(r["throughput"] for r in results[n]),
            "p50": statistics.median(r["p50"] for r in results[n]),
            "p95": statistics.median(r["p95"] for r in results[n]),
            "memory_mb": sum(memory[n].values()),
        }
    report["ratio"] = report["2"]["throughput"] / report["1"]["throughput"]
    lines = [
        "# `make bench-scale`: 2 Rasa instances against 1 (PostgreSQL + Redis + HAProxy in both)",
        "",
        f"{report['when']}, {report['cpus']} CPUs, {a.rounds} alternating rounds, {a.concurrent} concurrent "
        f"{a.turns}-turn conversations through the balancer; medians.",
        "",
        "| instances | throughput | p50 | p95 | RSS, all processes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n in (1, 2):
        r = report[f"{n}"]
        lines.append(
            f"| {n} | {r['throughput']:.1f} turns/s | {r['p50']:.0f} ms | {r['p95']:.0f} ms | {r['memory_mb']:.0f} MB |"
        )
    lines.append(f"\n2 instances / 1: {report['ratio']:.2f}x the throughput.\n")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(report, indent=2))
    (out / "scale.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
