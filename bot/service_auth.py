"""Credentials between our own processes: Rasa's HTTP API and the action server are private.

* Rasa's HTTP API (trackers, slots, trigger_intent, the model) takes a JWT in the Authorization
  header, never a token in a URL (URLs end up in logs). The signing secret is RASA_AUTH_TOKEN, else
  one generated once into the data directory (mode 0600). Our clients sign an "admin" token.
* The action server takes a shared secret in the Authorization header (HSG_ACTION_SECRET, else one
  generated once the same way); Rasa sends it with every action call (endpoints rendered by
  `render_endpoints`).
Rasa's channels (REST, socket.io) are not behind these credentials: they are bound to loopback and
patients reach them only through the web app's gateway.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

import jwt
import yaml

RASA_SECRET_FILE = "rasa-api-secret"
ACTION_SECRET_FILE = "action-server-secret"
JWT_METHOD = "HS256"


def private_dir(path: Path) -> Path:
    """The data directory, created 0700 (it holds databases and secrets)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _stored_secret(data_dir: Path, name: str) -> str:
    """A secret kept in data_dir/name (0600), created on first use; concurrent first uses agree."""
    path = private_dir(Path(data_dir)) / name
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def rasa_secret(data_dir: Path) -> str:
    return os.environ.get("RASA_AUTH_TOKEN") or _stored_secret(data_dir, RASA_SECRET_FILE)


def action_secret(data_dir: Path) -> str:
    return os.environ.get("HSG_ACTION_SECRET") or _stored_secret(data_dir, ACTION_SECRET_FILE)


def rasa_api_headers(secret: str | None) -> dict[str, str]:
    """The Authorization header for Rasa's HTTP API ({} without a secret: an unprotected test server)."""
    if not secret:
        return {}
    token = jwt.encode({"user": {"username": "hsg-internal", "role": "admin"}}, secret, algorithm=JWT_METHOD)
    return {"Authorization": f"Bearer {token}"}


def bearer_matches(header: str | None, secret: str) -> bool:
    """Constant-time check of an 'Authorization: Bearer <secret>' header."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), secret.encode())


def render_endpoints(template: Path, out: Path, action_port: int, secret: str, url: str | None = None) -> Path:
    """endpoints.yml with the action server's address (its port on this machine unless url is
    given, e.g. another container) and the Authorization header filled in (0600)."""
    doc = yaml.safe_load(template.read_text()) or {}
    action = dict(doc.get("action_endpoint") or {})
    action["url"] = url or f"http://127.0.0.1:{action_port}/webhook"
    action["headers"] = {"Authorization": f"Bearer {secret}"}
    doc["action_endpoint"] = action
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return out
