"""Fixtures for the nurses' dashboard: a database (SQLite, or a PostgreSQL schema), a movable
clock, the escalation service, a nurse, and the dashboard mounted at /staff/ of a parent app
exactly as the web app mounts it.

pytest-asyncio is not installed: each test drives aiohttp's TestServer/TestClient with
asyncio.run (see `run`), and the browser test serves the app from a background thread.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Awaitable, Callable, List, Optional, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.dashboard import create_dashboard
from bot.store.db import Database
from bot.store.models import AuditEntry, utcnow
from bot.escalation.service import Escalations
from bot.staff.roster import add_staff
from support.browser import chromium
from support.databases import throwaway_database

T = TypeVar("T")
NURSE_NAME = "Nurse Ada"
NURSE_PASSWORD = "correct horse battery"
XSS_WORDS = 'I am bleeding a lot <script>alert(1)</script> and "><img src=x onerror=alert(1)>'
FINDINGS = [{"concept": "heavy_bleeding", "name": "Heavy bleeding", "text": "bleeding a lot",
             "level": "urgent", "negated": False, "hypothetical": False, "other_experiencer": False,
             "proxy": False, "counts": True, "from_earlier": False, "values": {"pads_per_hour": 2}}]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, tmp_path):
    with throwaway_database(request.param, tmp_path) as db:
        yield db


@pytest.fixture
def sqlite_database(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'dashboard.db'}")
    yield db
    db.dispose()


class Clock:
    """A naive-UTC clock that tests move forward."""

    def __init__(self, start: Optional[dt.datetime] = None):
        self.now = start or utcnow()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def service(database, clock):
    return Escalations(database.sessions, resend_after_minutes=10, tell_patient_after_minutes=20, clock=clock)


@pytest.fixture
def nurse(database):
    return add_staff(NURSE_NAME, 5551001, NURSE_PASSWORD, sessions=database.sessions)


def mount(service: Escalations, database: Database, clock: Clock, **options) -> web.Application:
    """The dashboard under /staff/ of a parent app, as bot.web mounts it."""
    parent = web.Application()
    parent.add_subapp("/staff/", create_dashboard(service, database.sessions, clock=clock, **options))
    return parent


@pytest.fixture
def app(service, database, clock):
    return mount(service, database, clock)


def run(app: web.Application, scenario: Callable[[TestClient], Awaitable[T]]) -> T:
    """Serve `app` on 127.0.0.1 and run `scenario(client)` to completion."""
    async def main() -> T:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            return await scenario(client)
    return asyncio.run(main())


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def login(client: TestClient, name: str = NURSE_NAME, password: str = NURSE_PASSWORD):
    """Sign in through the form; returns the POST's response (303 on success)."""
    page = await client.get("/staff/login")
    assert page.status == 200
    token = csrf_of(await page.text())
    return await client.post("/staff/login", data={"name": name, "password": password, "csrf_token": token},
                             allow_redirects=False)


async def page_csrf(client: TestClient, path: str = "/staff/") -> str:
    r = await client.get(path, allow_redirects=False)
    assert r.status == 200, r.status
    return csrf_of(await r.text())


def record(service: Escalations, conv: str = "conv-1", level: str = "urgent", words: str = XSS_WORDS,
           summary: str = "heavy bleeding (2 pads an hour)", days: Optional[float] = 3,
           transcript: Optional[List[dict]] = None, **extra):
    return service.record(conv, "telegram", level, summary, FINDINGS, ["heavy bleeding -> urgent"], words,
                          transcript=transcript if transcript is not None else
                          [{"who": "patient", "text": words, "at": 1764172800.0},
                           {"who": "assistant", "text": "Please call the clinic now.", "at": None}],
                          days_since_procedure=days,
                          contact={"channel": "telegram", "how": "Telegram chat with the clinic's bot"},
                          **extra)


def audit_rows(database: Database, action: Optional[str] = None, escalation_id: Optional[str] = None
               ) -> List[AuditEntry]:
    with database.sessions() as s:
        q = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            q = q.where(AuditEntry.action == action)
        if escalation_id:
            q = q.where(AuditEntry.escalation_id == escalation_id)
        return list(s.execute(q).scalars())


# -- the browser test: the app served from a background thread, Debian's chromium ---------------



class ServerThread:
    """An aiohttp app served from an event loop in a daemon thread, on a free 127.0.0.1 port."""

    def __init__(self) -> None:
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="dashboard-server", daemon=True)
        self.thread.start()
        self.runner: Optional[web.AppRunner] = None

    def call(self, coro, timeout: float = 15):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def serve(self, app: web.Application) -> int:
        async def start() -> int:
            self.runner = web.AppRunner(app, shutdown_timeout=1.0)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0, shutdown_timeout=1.0)
            await site.start()
            return self.runner.addresses[0][1]
        return self.call(start())

    def close(self) -> None:
        if self.runner is not None:
            try:
                self.call(self.runner.cleanup(), timeout=10)
            except Exception:
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def browser():
    with chromium() as b:
        yield b
