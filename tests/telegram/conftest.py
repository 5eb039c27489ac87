"""Fixtures for the patients' Telegram channel tests (no real Telegram: the Bot API emulator)."""
import itertools

import pytest
from support.telegram_emulator import TelegramEmulator
from tg_support import Harness

from bot.store.db import Database

_chat_ids = itertools.count(7_100_001)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('tg') / 'tg.db'}")
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def emu():
    with TelegramEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def bot(emu, db):
    """The bot in polling mode with a stub Rasa, shared by a module's tests (each uses its own chat)."""
    with Harness(emu, db.sessions) as harness:
        yield harness


@pytest.fixture
def chat():
    """A fresh patient chat id (private chats: chat id = user id)."""
    return next(_chat_ids)


@pytest.fixture(autouse=True)
def _reset_stub(request):
    yield
    if "bot" in request.fixturenames:
        harness = request.getfixturevalue("bot")
        harness.rasa.status, harness.rasa.append_only = 200, False
        harness.rasa.delay = lambda message: 0.0
        harness.rasa.reply = lambda sender, message: [{"recipient_id": sender, "text": f"You said: {message}"}]
