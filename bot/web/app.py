"""The patients' chat page as an aiohttp app.

Routes: GET / (the page), GET /static/... (chat.js, chat.css, the vendored socket.io client),
GET /config.json (the clinic's details and where the chat's socket.io is: this server), GET
/healthz, the chat's socket.io and REST (bot/web/chat.py: through the patient gateway, to Rasa on
loopback), and the nurses' dashboard under /staff/. Every response carries a strict
Content-Security-Policy that allows scripts, styles and connections only to this server.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from aiohttp import web

STATIC_DIR = Path(__file__).resolve().parent / "static"
SOCKETIO_PATH = "/socket.io"

SETTINGS_KEY = web.AppKey("settings", object)
RASA_KEY = web.AppKey("rasa", dict)
CHAT_KEY = web.AppKey("chat", object)
_ResponseT = TypeVar("_ResponseT", bound=web.StreamResponse)


def rasa_endpoint(rasa_url: str) -> dict[str, str]:
    """Where the browser finds Rasa's socket.io channel: the URL's origin, and the socket.io path
    (a path in the URL, for Rasa behind a reverse proxy under a prefix, goes before /socket.io;
    socket.io-client would read it as a namespace otherwise)."""
    parts = urlsplit((rasa_url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--rasa-url must be an http(s) URL such as http://localhost:5005, not {rasa_url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"--rasa-url takes a scheme, host, port and optional path only: {rasa_url!r}")
    origin = f"{parts.scheme}://{parts.netloc}"
    ws_origin = ("wss" if parts.scheme == "https" else "ws") + f"://{parts.netloc}"
    prefix = parts.path.rstrip("/")
    return {"url": origin, "ws_url": ws_origin, "socketio_path": prefix + SOCKETIO_PATH}


def content_security_policy(rasa: dict[str, str]) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


def _clinic(settings) -> dict[str, str]:
    c = settings.clinic
    return {
        "name": c.name,
        "phone": c.phone,
        "out_of_hours_phone": c.out_of_hours_phone,
        "hours": c.hours,
        "emergency_number": c.emergency_number,
    }


def tel(number: str) -> str:
    """A phone number as a tel: URI's digits ("020 7946 0321" -> "02079460321")."""
    return re.sub(r"[^0-9+]", "", number)


def _no_cache(response: _ResponseT) -> _ResponseT:
    response.headers["Cache-Control"] = "no-cache"
    return response


async def index(request: web.Request) -> web.Response:
    """The page, with the clinic's details filled in (escaped) so the safety notice shows even
    before chat.js has run, or without JavaScript."""
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    for key, value in _clinic(request.app[SETTINGS_KEY]).items():
        page = page.replace("{{ clinic_" + key + " }}", html.escape(value))
        page = page.replace("{{ tel_" + key + " }}", html.escape(tel(value)))
    return _no_cache(web.Response(text=page, content_type="text/html", charset="utf-8"))


async def config(request: web.Request) -> web.Response:
    return _no_cache(
        web.json_response(
            {
                "rasa_url": "",  # the page's own origin: patients never reach Rasa
                "socketio_path": SOCKETIO_PATH,
                "clinic": _clinic(request.app[SETTINGS_KEY]),
            }
        )
    )


async def healthz(request: web.Request) -> web.Response:
    return _no_cache(web.Response(text="ok"))


def mount_staff(app: web.Application) -> None:
    """The nurses' dashboard (bot/dashboard) under /staff/, with its own authentication and CSP.
    HSG_COOKIE_SECURE=0 allows its session cookie over plain http (local development only)."""
    from bot.dashboard import create_dashboard
    from bot.escalation import get_service

    service = get_service()
    secure = os.environ.get("HSG_COOKIE_SECURE", "1") != "0"
    app.add_subapp("/staff/", create_dashboard(service, service.sessions, cookie_secure=secure))


def default_origins(port: int):
    extra = os.environ.get("HSG_WEB_ORIGINS", "").split()
    return [f"http://localhost:{port}", f"http://127.0.0.1:{port}", *extra]


def create_app(rasa_url: str, settings=None, chat=None, origins=None) -> web.Application:
    """The web app. rasa_url: Rasa's REST channel as this server reaches it (loopback, e.g.
    http://127.0.0.1:5005); settings: bot.settings.Settings, by default from clinic.yml; chat: the
    chat server (bot.web.chat.ChatServer), built here by default; origins: the Origins allowed to
    open the chat's socket (default: this server on localhost and 127.0.0.1, port 8080)."""
    if settings is None:
        from bot import settings as bot_settings

        settings = bot_settings.get()
    rasa = rasa_endpoint(rasa_url)
    headers = {
        "Content-Security-Policy": content_security_policy(rasa),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }

    async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
        # on_response_prepare runs for every response: pages, static files, errors (404, 405...).
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-cache")  # revalidate: a deploy shows at once

    app = web.Application()
    app[SETTINGS_KEY] = settings
    app[RASA_KEY] = rasa
    app.on_response_prepare.append(security_headers)  # type: ignore[arg-type]  # aiohttp 3.9's signal alias predates aiosignal 1.4's Signal[*Ts]
    app.router.add_get("/", index)
    app.router.add_get("/config.json", config)
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
    if chat is None:
        from bot.web.chat import build_chat

        chat = build_chat(
            rasa_url,
            settings.data_dir,
            origins if origins is not None else default_origins(8080),
            os.environ.get("REDIS_URL"),
        )
    app[CHAT_KEY] = chat
    from bot.service_auth import rasa_secret

    chat.attach(app, push_secret=rasa_secret(settings.data_dir))
    mount_staff(app)
    return app


def run(rasa_url: str, host: str = "127.0.0.1", port: int = 8080, settings=None) -> None:
    app = create_app(rasa_url, settings, origins=default_origins(port))
    print(f"chat page on http://{host}:{port}/ (Rasa at {app[RASA_KEY]['url']}, through the gateway)", flush=True)
    web.run_app(app, host=host, port=port, print=None)
