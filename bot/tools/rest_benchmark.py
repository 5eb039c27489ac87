"""Per-turn latency through REST, action server included (`make benchmark-rest`; not a test).

Starts the trained bot on free loopback ports (or uses --rasa-url), then runs conversations of
TURNS messages: first 1 conversation at a time, then CONCURRENT at once, and reports p50/p95 per
turn overall and at turn 1 versus turn 40 (a long conversation's tracker is bigger).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = [  # a realistic mix: symptoms (engine + action), answers, questions (FAQ), small talk
    "hello",
    "I had my HSG yesterday and I have some cramps",
    "about a 4",
    "yes they help",
    "what should I expect after the test?",
    "a bit of sticky discharge too",
    "is that normal?",
    "can I have a bath?",
    "thanks",
    "my temperature is 37.4",
    "some spotting today",
    "when can we try for a baby?",
    "I feel a bit dizzy",
    "ok thank you",
]


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def conversation(http: aiohttp.ClientSession, rasa_url: str, turns: int) -> list[float]:
    sender = "bench-" + uuid.uuid4().hex[:10]
    times = []
    for i in range(turns):
        start = time.perf_counter()
        async with http.post(
            f"{rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": SCRIPT[i % len(SCRIPT)]}
        ) as r:
            await r.read()
            assert r.status == 200, r.status
        times.append((time.perf_counter() - start) * 1000)
    return times


async def run(rasa_url: str, turns: int, concurrent: int) -> dict[str, dict[str, float]]:
    out = {}
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await conversation(http, rasa_url, 3)  # warm-up
        for n in (1, concurrent):
            results = await asyncio.gather(*(conversation(http, rasa_url, turns) for _ in range(n)))
            every = [t for conv in results for t in conv]
            first = [conv[0] for conv in results]
            last = [conv[-1] for conv in results]
            out[f"{n} conversation(s)"] = {
                "turns": len(every),
                "p50": statistics.median(every),
                "p95": percentile(every, 95),
                "turn 1 p50": statistics.median(first),
                f"turn {turns} p50": statistics.median(last),
                "turn 1 p95": percentile(first, 95),
                f"turn {turns} p95": percentile(last, 95),
            }
    return out


def start_bot(model: str):
    def free():
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    rasa_port = free()
    tmp = Path(tempfile.mkdtemp(prefix="hsg-bench-"))
    (tmp / "endpoints.yml").write_text(
        f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{tmp / "tracker.db"}"\n'
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp / 'hsg.db'}",
        "HSG_DATA_DIR": str(tmp / "var"),
        "HSG_ENDPOINTS_TEMPLATE": str(tmp / "endpoints.yml"),
    }
    # as `make run` starts it: loopback, the actions in Rasa's process, the API's JWT
    from bot.supervisor import rasa_service

    started = (rasa_service(model, rasa_port, None, web_port=8080),)
    procs = [
        subprocess.Popen(s.argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for s in started
    ]
    for url in (f"http://127.0.0.1:{rasa_port}/",):
        for _ in range(300):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except Exception:
                time.sleep(1)
    return f"http://127.0.0.1:{rasa_port}", procs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="start this model on free ports (default: use --rasa-url)")
    ap.add_argument("--rasa-url", default="http://localhost:5005")
    ap.add_argument("--turns", type=int, default=40)
    ap.add_argument("--concurrent", type=int, default=20)
    a = ap.parse_args()
    procs = []
    url = a.rasa_url
    if a.model:
        url, procs = start_bot(a.model)
    try:
        results = asyncio.run(run(url, a.turns, a.concurrent))
    finally:
        for p in procs:
            p.terminate()
    print(f"REST per-turn latency in ms (action server included), {a.turns}-turn conversations, {os.cpu_count()} CPUs")
    for name, r in results.items():
        print(
            f"  {name}: {r['turns']} turns  p50 {r['p50']:.0f}  p95 {r['p95']:.0f}  |  turn 1 p50 "
            f"{r['turn 1 p50']:.0f} p95 {r['turn 1 p95']:.0f}  |  turn {a.turns} p50 "
            f"{r[f'turn {a.turns} p50']:.0f} p95 {r[f'turn {a.turns} p95']:.0f}"
        )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
