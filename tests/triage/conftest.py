import pytest

from bot.triage import engine as _engine


@pytest.fixture(scope="session")
def engine():
    return _engine()


@pytest.fixture(scope="session")
def level(engine):
    return lambda text, **kw: engine.triage(text, **kw).level
