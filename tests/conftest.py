"""Shared fixtures: the live bot (trained model + Rasa server + action server) for end-to-end tests.

`make test` trains the model and passes its path in HSG_MODEL; the servers run on free loopback
ports with their own SQLite tracker store, so they never collide with a running `make run`.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import tempfile

# Tests never touch the developer's var/ database: one throwaway SQLite file per test session
# (set before anything reads bot.settings). Tests that need PostgreSQL make their own schema.
_TMP = tempfile.mkdtemp(prefix="hsg-tests-")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_TMP}/hsg.db")
# ...nor Rasa's tracker store in var/ (what /forget erases when no live bot says otherwise)
with open(f"{_TMP}/endpoints.yml", "w") as _f:
    _f.write(f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{_TMP}/tracker.db"\n')
os.environ.setdefault("RASA_ENDPOINTS", f"{_TMP}/endpoints.yml")
# Dashboard passwords at scrypt N = 2^14 instead of OWASP's 2^17 (128 MiB, ~0.3 s each): the
# suite adds many nurses. tests/dashboard/test_accounts.py checks the production default.
os.environ.setdefault("HSG_SCRYPT_LOG2N", "14")

import pytest  # noqa: E402

from support.paths import trained_model, vignettes_dir
from support.processes import wait_http

ROOT = Path(__file__).resolve().parent.parent


VIGNETTES = (vignettes_dir() or Path("/nonexistent")) / "dev.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Bot:
    rasa_url: str
    action_url: str
    tmp: Path
    env: dict
    rasa_secret: str = ""          # the HTTP API's JWT secret
    action_secret: str = ""        # the action server's shared secret
    smtp_port: int = 0             # the alert email target this deployment is configured with

    def api(self, path: str, method: str = "GET", body=None, timeout: float = 30):
        """Rasa's HTTP API with the JWT header, as our own services call it; the JSON answer."""
        from bot.service_auth import rasa_api_headers
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.rasa_url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **rasa_api_headers(self.rasa_secret)})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)

    def send(self, sender: str, message: str, timeout: float = 60) -> List[dict]:
        req = urllib.request.Request(f"{self.rasa_url}/webhooks/rest/webhook",
                                     data=json.dumps({"sender": sender, "message": message}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)

    @staticmethod
    def triage(responses: List[dict]) -> Optional[dict]:
        found = [r["custom"]["triage"] for r in responses if (r.get("custom") or {}).get("triage")]
        assert len(found) <= 1, responses
        return found[0] if found else None

    @staticmethod
    def new_sender() -> str:
        return "test-" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def live_bot(tmp_path_factory):
    model = trained_model()
    tmp = tmp_path_factory.mktemp("bot")
    rasa_port, action_port = free_port(), free_port()
    endpoints = tmp / "endpoints.yml"      # a template: `python -m bot rasa` adds the action server's secret
    endpoints.write_text(
        f'action_endpoint:\n  url: "http://127.0.0.1:{action_port}/webhook"\n'
        f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{tmp / "tracker.db"}"\n')
    smtp_port = free_port()
    # configured with an email target (a test that needs the mail starts a server on this port),
    # so the patient's answer says the nurses were alerted, as in a clinic that has one
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "HSG_DATA_DIR": str(tmp / "var"), "HSG_ENDPOINTS_TEMPLATE": str(endpoints),
           "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "ALERT_EMAIL_FROM": "hsg-bot@clinic.test",
           "ALERT_EMAIL_TO": "nurses@clinic.test"}
    env.pop("RASA_AUTH_TOKEN", None)
    env.pop("HSG_ACTION_SECRET", None)
    logs = [open(tmp / "actions.log", "w"), open(tmp / "rasa.log", "w")]
    # started as `make run` starts them: loopback only, the HTTP API behind a JWT, actions behind a secret
    procs = [
        subprocess.Popen([sys.executable, "-m", "bot", "actions", "--port", str(action_port)],
                         cwd=ROOT, env=env, stdout=logs[0], stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "bot", "rasa", "--model", str(model), "--port", str(rasa_port),
                          "--action-port", str(action_port)],
                         cwd=ROOT, env=env, stdout=logs[1], stderr=subprocess.STDOUT),
    ]
    try:
        wait_http(f"http://127.0.0.1:{action_port}/health", procs[0])
        wait_http(f"http://127.0.0.1:{rasa_port}/version", procs[1])   # (/status needs the JWT)
        from bot.service_auth import action_secret, rasa_secret
        yield Bot(f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{action_port}", tmp, env,
                  rasa_secret(tmp / "var"), action_secret(tmp / "var"), smtp_port)
    except Exception:
        for log in logs:
            log.flush()
        print((tmp / "rasa.log").read_text()[-4000:])
        raise
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()


@pytest.fixture(scope="session")
def dev_vignettes():
    if not VIGNETTES.exists():
        pytest.skip("the shared dev vignettes are not beside this checkout")
    return [json.loads(line) for line in VIGNETTES.read_text().splitlines() if line.strip()]
