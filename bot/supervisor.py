"""`python -m bot run`: start every process of the embedded deployment, report, stop them together.

Processes: the Rasa server with its REST channel and the custom actions in its own process
(127.0.0.1:5005, HTTP API behind a JWT), the web app with the patients' chat page and the
nurses' dashboard (8080), and, when a Telegram token is set, the Telegram gateway; and always the
outbox relay (Telegram staff chat, email and the dashboard, whichever are configured) and the
timers worker. Ctrl-C or SIGTERM stops them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bot.service_auth import private_dir

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Service:
    name: str
    argv: list[str]
    health_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return 200 <= r.status < 300
    except Exception:
        return False


def web_origins(web_port: int) -> list[str]:
    """Origins allowed to call Rasa from a browser: the chat page's own (HSG_WEB_ORIGINS adds more,
    space-separated, e.g. the clinic's public https origin)."""
    extra = os.environ.get("HSG_WEB_ORIGINS", "").split()
    return [f"http://localhost:{web_port}", f"http://127.0.0.1:{web_port}", *extra]


def rasa_service(
    model: str, port: int, action_port: int | None, web_port: int, name: str = "rasa", env: dict[str, str] | None = None
) -> Service:
    """A Rasa server; with no action_port it runs the custom actions itself (bot/inprocess_actions.py)."""
    origins = [a for o in web_origins(web_port) for a in ("--web-origin", o)]
    argv = [sys.executable, "-m", "bot", "rasa", "--model", model, "--port", str(port)]
    actions = ["--in-process-actions"] if action_port is None else ["--action-port", str(action_port)]
    return Service(
        name,
        [*argv, *actions, *origins],
        health_url=f"http://127.0.0.1:{port}/version",
        env=env or {},
    )


def front_services(rasa_port: int, web_port: int) -> list[Service]:
    """What runs once whatever the number of Rasa servers: the patients' chat page and the
    nurses' dashboard, the Telegram gateway when a token is set, the outbox relay and the timers
    (these two always: re-alerts and "please call us directly" do not depend on Telegram)."""
    rasa_url = f"http://localhost:{rasa_port}"
    web_argv = [sys.executable, "-m", "bot", "web", "--port", str(web_port), "--rasa-url", rasa_url]
    out = [Service("web", web_argv, health_url=f"http://127.0.0.1:{web_port}/healthz")]
    if os.environ.get("TELEGRAM_BOT_TOKEN"):
        # long polling: one process receives the bot's updates (staff buttons and patients' chats)
        out.append(Service("telegram", [sys.executable, "-m", "bot", "telegram", "--rasa-url", rasa_url]))
    relay_env = {"RASA_URL": f"http://127.0.0.1:{rasa_port}", "HSG_WEB_URL": f"http://127.0.0.1:{web_port}"}
    out.append(Service("relay", [sys.executable, "-m", "bot", "relay"], env=relay_env))
    out.append(Service("timers", [sys.executable, "-m", "bot", "timers"]))
    return out


def services(model: str, rasa_port: int = 5005, web_port: int = 8080) -> list[Service]:
    """The embedded deployment: Rasa with the actions in its own process (no action server: the
    engine is loaded once, ~340 MB less, no tracker sent over HTTP per action), then the front."""
    return [rasa_service(model, rasa_port, None, web_port), *front_services(rasa_port, web_port)]


def _ports() -> dict[str, int]:
    """Default ports, or HSG_RASA_PORT / HSG_WEB_PORT (tests, a second copy)."""
    return {
        "rasa": int(os.environ.get("HSG_RASA_PORT", 5005)),
        "web": int(os.environ.get("HSG_WEB_PORT", 8080)),
    }


def run(model: str, wait_seconds: float = 300, procs: list[Service] | None = None) -> int:
    """Start procs (default: the embedded deployment of `make run`), report, stop them together."""
    if not Path(model).exists():
        print(f"model {model} not found: run `make train`", file=sys.stderr)
        return 2
    # databases, secrets and rendered endpoints: readable by this user only
    os.umask(0o077)
    for path in private_dir(ROOT / "var").rglob("*"):  # files left by an earlier, looser version
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
    ports = _ports()
    procs = procs or services(model, rasa_port=ports["rasa"], web_port=ports["web"])
    stopping = False

    def stop(*_):
        nonlocal stopping
        if stopping:
            return
        stopping = True
        print("\nstopping...", flush=True)
        for s in procs:
            if s.proc and s.proc.poll() is None:
                s.proc.terminate()
        deadline = time.time() + 15
        for s in procs:
            if s.proc:
                try:
                    s.proc.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    s.proc.kill()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    # the schema first, once: five processes migrating a new database at the same moment race
    # ("table audit_log already exists") and the loser would stop the whole deployment
    if subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], cwd=ROOT, env=env).returncode != 0:
        print("could not create or upgrade the database schema", file=sys.stderr)
        return 1
    for s in procs:
        print(f"starting {s.name}: {' '.join(s.argv[:3])} ...", flush=True)
        s.proc = subprocess.Popen(s.argv, cwd=ROOT, env={**env, **s.env})

    start = time.time()
    pending = [s for s in procs if s.health_url]
    while pending and not stopping and time.time() - start < wait_seconds:
        for s in list(pending):
            proc, health_url = s.proc, s.health_url
            assert proc is not None and health_url is not None  # all started above; pending: those with a URL
            if proc.poll() is not None:
                print(f"{s.name} exited with status {proc.returncode}", file=sys.stderr)
                stop()
                return 1
            if _healthy(health_url):
                print(f"{s.name} is up ({health_url})", flush=True)
                pending.remove(s)
        time.sleep(1)
    if pending and not stopping:
        print("timed out waiting for: " + ", ".join(s.name for s in pending), file=sys.stderr)
        stop()
        return 1
    if not stopping:
        print("\nThe HSG aftercare assistant is running.", flush=True)
        if any(s.name == "web" for s in procs):
            print(f"  Patients' chat page:  http://localhost:{ports['web']}/", flush=True)
            print(f"  Nurses' dashboard:    http://localhost:{ports['web']}/staff/", flush=True)
        if any(s.name == "telegram" for s in procs):
            print(
                "  Telegram: served in polling mode (python -m bot telegram); patients message the bot "
                "privately, nurses use the staff chat's buttons",
                flush=True,
            )
        from bot import settings as settings_mod

        print(
            "  Staff alerts: python -m bot relay ("
            + ", ".join(settings_mod.get().staff_targets())
            + "); timers: python -m bot timers",
            flush=True,
        )
        print(
            f"  REST:   curl -s localhost:{ports['web']}/webhooks/rest/webhook "
            "-d '{\"sender\": \"me\", \"message\": \"I have cramps\"}'  (through the gateway)",
            flush=True,
        )
        print(f"  Rasa ({ports['rasa']}, the actions run inside it) listens on 127.0.0.1 only.", flush=True)
        print("  Stop with Ctrl-C.", flush=True)
    while not stopping:
        for s in procs:
            proc = s.proc
            assert proc is not None  # all started above
            if proc.poll() is not None:
                print(f"{s.name} exited with status {proc.returncode}; stopping the rest", file=sys.stderr)
                stop()
                return 1
        time.sleep(1)
    return 0
