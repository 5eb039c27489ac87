"""Fixtures for the chat page: the web app and a fake Rasa on free ports, Debian's chromium.

pytest-asyncio is not installed: servers run on an event loop in a background thread, tests stay
synchronous (Playwright's sync API) and wait on the fake's records with `wait_for`.
"""
from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Callable, List

import pytest
from aiohttp import web

from bot import settings as bot_settings
from bot.web.app import create_app
from support.browser import chromium

from .fake_rasa import FakeRasa



class ServerThread:
    """aiohttp apps served from one event loop in a daemon thread, each on a free 127.0.0.1 port."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-servers", daemon=True)
        self.thread.start()
        self.runners: List[web.AppRunner] = []

    def call(self, coro, timeout: float = 15):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def serve(self, app: web.Application) -> int:
        async def start() -> int:
            runner = web.AppRunner(app, shutdown_timeout=1.0)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, shutdown_timeout=1.0)   # port 0: the OS picks
            await site.start()
            self.runners.append(runner)
            return runner.addresses[0][1]
        return self.call(start())

    def close(self) -> None:
        for runner in reversed(self.runners):
            try:
                self.call(runner.cleanup(), timeout=10)
            except Exception:
                pass
        async def cancel_the_rest() -> None:      # engine.io's ping and service tasks
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self.call(cancel_the_rest(), timeout=10)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Outage:
    """The web app's chat going away (a crash or restart): connections cut, new ones refused."""

    def __init__(self) -> None:
        self.down = False
        self._transports: set = set()

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        if request.path.startswith("/socket.io"):
            if self.down:
                raise web.HTTPServiceUnavailable()
            if request.transport is not None:
                self._transports.add(request.transport)
        return await handler(request)

    async def go_down(self) -> None:
        self.down = True
        for transport in list(self._transports):
            transport.close()
        self._transports.clear()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The web app (its gateway talking to the fake Rasa's REST channel) and the fake Rasa, on 127.0.0.1."""
    import dataclasses
    from bot.web.app import CHAT_KEY

    thread = ServerThread()
    try:
        fake = FakeRasa()
        rasa_port = thread.serve(fake.app)
        clinic = dataclasses.replace(bot_settings.load(), data_dir=tmp_path_factory.mktemp("web-var"))
        web_port = _free_port()
        app = create_app(f"http://127.0.0.1:{rasa_port}", clinic,
                         origins=[f"http://127.0.0.1:{web_port}", f"http://localhost:{web_port}"])
        outage = Outage()
        app.middlewares.append(outage.middleware)
        thread.call(_serve_on(thread, app, web_port))
        yield SimpleNamespace(fake=fake, rasa_port=rasa_port, web_port=web_port, clinic=clinic.clinic,
                              call=thread.call, chat=app[CHAT_KEY], outage=outage,
                              url=f"http://127.0.0.1:{web_port}/",
                              hosts={f"127.0.0.1:{web_port}"})
    finally:
        thread.close()


async def _serve_on(thread: "ServerThread", app: web.Application, port: int) -> None:
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, shutdown_timeout=1.0).start()
    thread.runners.append(runner)


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b
