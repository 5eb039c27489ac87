"""`make run`'s supervisor: every service comes up and SIGTERM to its process group stops all."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support.paths import trained_model

pytestmark = pytest.mark.rasa
ROOT = Path(__file__).resolve().parents[2]


def _free():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_serves_everything_and_stops_on_sigterm(tmp_path):
    ports = {"HSG_RASA_PORT": _free(), "HSG_WEB_PORT": _free()}
    # a new escalation database: five processes start at once and must not race to create it
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "PYTHONPATH": str(ROOT),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    log = open(tmp_path / "run.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--model", str(trained_model())], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and "is running" not in (tmp_path / "run.log").read_text():
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(1)
        out = (tmp_path / "run.log").read_text()
        assert f"http://localhost:{ports['HSG_WEB_PORT']}/" in out
        assert urllib.request.urlopen(f"http://127.0.0.1:{ports['HSG_WEB_PORT']}/healthz", timeout=5).status == 200
        req = urllib.request.Request(f"http://127.0.0.1:{ports['HSG_RASA_PORT']}/webhooks/rest/webhook",
                                     data=b'{"sender": "run-test", "message": "I have cramps"}',
                                     headers={"Content-Type": "application/json"})
        # answered by action_triage, which runs inside the Rasa process (no action server)
        assert b"after-effect" in urllib.request.urlopen(req, timeout=60).read()
        # the same through the web app's gateway (what integrations use), with a marker phrase that
        # must appear in no log of any process
        marker = "quokkamarmalade"
        req = urllib.request.Request(f"http://127.0.0.1:{ports['HSG_WEB_PORT']}/webhooks/rest/webhook",
                                     data=json.dumps({"sender": "run-test-2",
                                                      "message": f"{marker} I have mild cramps 3/10"}).encode(),
                                     headers={"Content-Type": "application/json"})
        assert b"after-effect" in urllib.request.urlopen(req, timeout=60).read()
        # the HTTP API is behind its JWT; var/ (databases, secrets) is this user's only
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{ports['HSG_RASA_PORT']}/conversations/run-test/tracker",
                                   timeout=10)
            raise AssertionError("Rasa served a tracker without the JWT")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        assert (ROOT / "var").stat().st_mode & 0o777 == 0o700
        assert not [p.name for p in (ROOT / "var").iterdir() if p.is_file() and p.stat().st_mode & 0o077]
        children = subprocess.run(["pgrep", "-g", str(os.getpgid(proc.pid))], capture_output=True,
                                  text=True).stdout.split()
        assert len(children) >= 5          # supervisor, rasa (with the actions), web, relay, timers
        assert "bot actions" not in subprocess.run(["ps", "-o", "args=", "-g", str(os.getpgid(proc.pid))],
                                                   capture_output=True, text=True).stdout
    finally:
        os.killpg(os.getpgid(proc.pid), signal.SIGTERM)     # what Ctrl-C / a service manager does
        proc.wait(timeout=60)
    time.sleep(2)
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert not left, f"processes left running: {left}"
    logged = (tmp_path / "run.log").read_text()
    assert "quokkamarmalade" not in logged and "3/10" not in logged and "run-test-2" not in logged
