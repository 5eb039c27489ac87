"""Rasa and the action server as private services: loopback only, credentials required.

`python -m bot actions` runs rasa-sdk's action server on 127.0.0.1 and refuses /webhook and
/actions without the shared secret (a forged call could otherwise create an escalation and a staff
alert with any transcript). `python -m bot rasa` runs `rasa run` on 127.0.0.1 with the HTTP API
behind a JWT, CORS limited to the web app's origins, and the action-server secret in the endpoints;
the secrets are passed inside the process, never on a command line another user could read.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from bot import service_auth

log = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"
OPEN_PATHS = ("/health",)


def action_app(secret: str, package: str = "actions"):
    """rasa-sdk's Sanic app with the secret checked before any action runs."""
    from rasa_sdk.endpoint import create_app
    from sanic import response

    app = create_app(package, cors_origins=None)

    @app.middleware("request")
    async def require_secret(request):
        if request.path in OPEN_PATHS:
            return None
        if not service_auth.bearer_matches(request.headers.get("authorization"), secret):
            log.warning("action server: refused a call without the shared secret")
            return response.json({"error": "unauthorised"}, status=401)
        return None

    return app


def run_actions(port: int, data_dir: Path, host: str = LOOPBACK) -> None:
    from bot.triage import engine

    engine()  # built now (~3 s), not inside the first patient's turn
    app = action_app(service_auth.action_secret(data_dir))
    log.info("action server on http://%s:%d (shared secret required)", host, port)
    app.run(host, port, workers=1, access_log=False, motd=False)


def rasa_argv(
    model: str,
    port: int,
    endpoints: str,
    web_origins: list[str],
    data_dir: Path,
    credentials: str = "credentials.yml",
    host: str = LOOPBACK,
) -> list[str]:
    argv = [
        "run",
        "--model",
        model,
        "--enable-api",
        "--interface",
        host,
        "--port",
        str(port),
        "--endpoints",
        endpoints,
        "--credentials",
        credentials,
        # "--opt=value": a secret that starts with "-" must not read as an option
        f"--jwt-secret={service_auth.rasa_secret(data_dir)}",
        f"--jwt-method={service_auth.JWT_METHOD}",
    ]
    if web_origins:
        argv += ["--cors", *web_origins]
    return argv


def run_rasa(
    model: str,
    port: int,
    action_port: int,
    web_origins: list[str],
    data_dir: Path,
    template: Path | None = None,
    credentials: str = "credentials.yml",
    host: str = LOOPBACK,
    action_url: str | None = None,
    in_process_actions: bool = False,
) -> None:
    """`rasa run`, in this process, with endpoints rendered for the action server's secret.
    host and action_url are for containers (a private network, not a machine's own loopback);
    in_process_actions runs the actions here instead (bot/inprocess_actions.py)."""
    from rasa.__main__ import main as rasa_main

    template = template or Path(os.environ.get("HSG_ENDPOINTS_TEMPLATE", "endpoints.yml"))
    endpoints = service_auth.render_endpoints(
        template,
        Path(data_dir) / f"endpoints-{port}.yml",
        action_port,
        service_auth.action_secret(data_dir),
        url=action_url,
    )
    sys.argv = ["rasa", *rasa_argv(model, port, str(endpoints), web_origins, data_dir, credentials, host=host)]
    hide_sql_parameters()
    from bot import rasa_speedups

    rasa_speedups.apply()
    if in_process_actions:
        from bot import inprocess_actions

        inprocess_actions.install()
    rasa_main()


def hide_sql_parameters() -> None:
    """Rasa's SQL tracker store builds its own engine; an error there (a locked SQLite file, a lost
    PostgreSQL connection) would print the bound parameters, i.e. the patient's message. Every
    engine made in this process hides them."""
    import functools

    import sqlalchemy

    original = sqlalchemy.create_engine
    if getattr(original, "hides_parameters", False):
        return

    @functools.wraps(original)
    def create_engine(*args, **kwargs):
        kwargs.setdefault("hide_parameters", True)
        return original(*args, **kwargs)

    create_engine.hides_parameters = True  # type: ignore[attr-defined]
    sqlalchemy.create_engine = create_engine
