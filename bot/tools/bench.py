"""`make bench`: this bot against a stock `rasa init` bot, side by side in one run (not a test).

Why side by side: absolute milliseconds depend on the machine and on whatever else it is doing;
a ratio against a stock Rasa bot measured in the same run, in alternating rounds, does not. Both
bots answer the same scripted conversations through Rasa's REST channel: this bot as `make run`
starts it (action server, SQL tracker store, escalation database, web app, relay and timers), the
stock bot as `rasa init` makes it (in-memory tracker, no action server).

Reported (medians over the rounds): sequential and 20-concurrent per-turn p50/p95, throughput,
turns 36-40 against turns 1-5 of one conversation, start to ready, RSS per process, full retrain
time. Writes reports/bench/bench.json, bench.md and bench.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bot.tools.rest_benchmark import conversation, percentile

ROOT = Path(__file__).resolve().parents[2]
RASA = str(Path(sys.executable).parent / "rasa")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of one process in MB, from /proc."""
    now = peak = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                now = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return now, peak


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            out += [child, *_children(child)]
    return out


def _name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    if "-m" in words and words.index("-m") + 2 < len(words) and words[words.index("-m") + 1] == "bot":
        return words[words.index("-m") + 2]
    return " ".join(Path(w).name for w in words[:2])


@dataclass
class Bot:
    """One running bot: its processes, its REST URL, and how long it took to answer first."""

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    port: int
    proc: subprocess.Popen | None = None
    ready_seconds: float = 0.0
    memory: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 600) -> None:
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        body = json.dumps({"sender": "ready-probe", "message": "hello"}).encode()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.proc.returncode}")
            try:
                req = urllib.request.Request(
                    f"{self.url}/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(req, timeout=5) as r:
                    if r.status == 200 and json.loads(r.read()):
                        self.ready_seconds = time.perf_counter() - t0
                        return
            except Exception:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s")

    def measure_memory(self) -> dict[str, float]:
        assert self.proc is not None
        pids = [self.proc.pid, *_children(self.proc.pid)]
        out: dict[str, float] = {}
        for pid in pids:
            now, _ = _rss_mb(pid)
            if now:
                key = _name(pid)
                out[key] = out.get(key, 0.0) + now
        self.memory = out
        return out

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def make_stock(work: Path, env: dict[str, str]) -> tuple[Path, float]:
    """`rasa init --no-prompt` (which trains), then a timed full retrain of the same project."""
    project = work / "stock"
    project.mkdir()
    subprocess.run(
        [RASA, "init", "--no-prompt", "--init-dir", str(project)],
        cwd=work,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cold = {**env, "RASA_CACHE_DIRECTORY": str(work / "cache-stock")}  # a full retrain: no cached components
    seconds = timed([RASA, "train", "--force", "--fixed-model-name", "stock", "--out", "models"], project, cold)
    return project / "models" / "stock.tar.gz", seconds


def make_ours(work: Path, env: dict[str, str], model: str | None) -> tuple[Path, float | None]:
    if model:
        return Path(model).resolve(), None
    cold = {**env, "RASA_CACHE_DIRECTORY": str(work / "cache-ours")}  # a full retrain: no cached components
    seconds = timed([RASA, "train", "--force", "--fixed-model-name", "ours", "--out", str(work / "models")], ROOT, cold)
    return work / "models" / "ours.tar.gz", seconds


def our_bot(work: Path, model: Path, env: dict[str, str]) -> Bot:
    """As `make run` starts it, on free ports, with its own databases under `work`."""
    var = work / "var"
    var.mkdir(exist_ok=True)
    template = work / "endpoints.yml"
    template.write_text((ROOT / "endpoints.yml").read_text().replace('"var/tracker.db"', f'"{var / "tracker.db"}"'))
    port = free_port()
    bot_env = {
        **env,
        "HSG_RASA_PORT": str(port),
        "HSG_WEB_PORT": str(free_port()),
        "HSG_DATA_DIR": str(var),
        "DATABASE_URL": f"sqlite:///{var / 'hsg.db'}",
        "HSG_ENDPOINTS_TEMPLATE": str(template),
    }
    bot_env.pop("TELEGRAM_BOT_TOKEN", None)
    return Bot("this bot", [sys.executable, "-m", "bot", "run", "--model", str(model)], ROOT, bot_env, port)


def stock_bot(project: Path, model: Path, env: dict[str, str]) -> Bot:
    port = free_port()
    argv = [RASA, "run", "--model", str(model), "--interface", "127.0.0.1", "--port", str(port)]
    return Bot("stock rasa init", argv, project, env, port)


async def load(url: str, turns: int, conversations: int) -> dict:
    timeout = aiohttp.ClientTimeout(total=1200)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        t0 = time.perf_counter()
        runs = await asyncio.gather(*(conversation(http, url, turns) for _ in range(conversations)))
        wall = time.perf_counter() - t0
    every = [t for run in runs for t in run]
    return {
        "p50": statistics.median(every),
        "p95": percentile(every, 95),
        "throughput": len(every) / wall,
        "early": [t for run in runs for t in run[:5]],
        "late": [t for run in runs for t in run[-5:]],
    }


def one_round(bot: Bot, turns: int, concurrent: int) -> dict:
    asyncio.run(load(bot.url, 3, 1))  # warm-up
    seq = asyncio.run(load(bot.url, turns, 1))
    par = asyncio.run(load(bot.url, turns, concurrent))
    return {"sequential": seq, "concurrent": par}


def summarise(rounds: list[dict]) -> dict:
    def med(kind: str, key: str) -> float:
        return statistics.median(r[kind][key] for r in rounds)

    early = [t for r in rounds for t in r["sequential"]["early"]]
    late = [t for r in rounds for t in r["sequential"]["late"]]
    return {
        "sequential_p50": med("sequential", "p50"),
        "sequential_p95": med("sequential", "p95"),
        "concurrent_p50": med("concurrent", "p50"),
        "concurrent_p95": med("concurrent", "p95"),
        "throughput": med("concurrent", "throughput"),
        "late_over_early": statistics.median(late) / statistics.median(early),
    }


ROWS = [  # (label, key, unit, lower is better)
    ("sequential turn p50", "sequential_p50", "ms", True),
    ("sequential turn p95", "sequential_p95", "ms", True),
    ("concurrent turn p50", "concurrent_p50", "ms", True),
    ("concurrent turn p95", "concurrent_p95", "ms", True),
    ("throughput, concurrent", "throughput", "turns/s", False),
    ("turns 36-40 / turns 1-5", "late_over_early", "", True),
    ("start to ready", "ready_seconds", "s", True),
    ("Rasa RSS", "rasa_mb", "MB", True),
    ("all processes RSS", "total_mb", "MB", True),
    ("full retrain", "retrain_seconds", "s", True),
]


def markdown(report: dict) -> str:
    ours, stock = report["this bot"], report["stock rasa init"]
    lines = [
        "# `make bench`: this bot against a stock `rasa init` bot",
        "",
        f"{report['when']}, {report['cpus']} CPUs, {report['rounds']} alternating rounds, "
        f"{report['turns']}-turn conversations, {report['concurrent']} concurrent; medians over the rounds.",
        "",
        "| figure | this bot | stock `rasa init` | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for label, key, unit, _ in ROWS:
        a, b = ours.get(key), stock.get(key)
        if a is None or b is None:
            continue
        label = label.replace("concurrent", f"{report['concurrent']} concurrent")
        lines.append(f"| {label} | {a:.2f} {unit} | {b:.2f} {unit} | {a / b:.2f}x |")
    for name in ("this bot", "stock rasa init"):
        procs = ", ".join(f"{k} {v:.0f} MB" for k, v in sorted(report[name]["memory"].items()))
        lines.append(f"\nRSS after the load, {name}: {procs}.")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [r for r in ROWS if r[1] in report["this bot"] and r[1] in report["stock rasa init"]]
    ratios = [report["this bot"][k] / report["stock rasa init"][k] for _, k, _, _ in keys]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.barh(
        [label for label, *_ in keys],
        ratios,
        color=["#2a7" if (r <= 1) == low else "#c33" for r, (_, _, _, low) in zip(ratios, keys)],
    )
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlabel("this bot / stock rasa init (throughput: higher is better; the rest: lower)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run_bots(bots: list[Bot], rounds: int, turns: int, concurrent: int) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {b.name: [] for b in bots}
    for i in range(rounds):
        for bot in bots if i % 2 == 0 else list(reversed(bots)):
            print(f"round {i + 1}: {bot.name}", flush=True)
            results[bot.name].append(one_round(bot, turns, concurrent))
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="use this trained model of our bot instead of retraining (no retrain time)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--turns", type=int, default=40)
    ap.add_argument("--concurrent", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench"))
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hsg-bench-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    print("training the stock bot (rasa init) and, unless --model, this bot ...", flush=True)
    stock_model, stock_train = make_stock(work, env)
    our_model, our_train = make_ours(work, env, a.model)
    bots = [our_bot(work, our_model, env), stock_bot(stock_model.parent.parent, stock_model, env)]
    try:
        for bot in bots:  # one at a time, so neither start is slowed by the other
            bot.start()
            print(f"{bot.name} ready in {bot.ready_seconds:.1f} s", flush=True)
        results = run_bots(bots, a.rounds, a.turns, a.concurrent)
        report: dict = {
            "when": time.strftime("%Y-%m-%d %H:%M"),
            "cpus": os.cpu_count(),
            "rounds": a.rounds,
            "turns": a.turns,
            "concurrent": a.concurrent,
        }
        for bot, train in zip(bots, (our_train, stock_train)):
            memory = bot.measure_memory()
            report[bot.name] = {
                **summarise(results[bot.name]),
                "ready_seconds": bot.ready_seconds,
                "memory": memory,
                "rasa_mb": sum(v for k, v in memory.items() if "rasa" in k),
                "total_mb": sum(memory.values()),
                **({"retrain_seconds": train} if train is not None else {}),
            }
    finally:
        for bot in bots:
            bot.stop()
        shutil.rmtree(work, ignore_errors=True)
    if "retrain_seconds" not in report["this bot"]:
        report["stock rasa init"].pop("retrain_seconds", None)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    (out / "bench.md").write_text(markdown(report))
    plot(report, out / "bench.png")
    print(markdown(report))
    print(f"written: {out / 'bench.md'}, bench.json, bench.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
