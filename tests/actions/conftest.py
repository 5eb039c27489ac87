import pytest
from rasa_sdk.executor import CollectingDispatcher

from support.trackers import make_tracker


@pytest.fixture
def dispatcher():
    return CollectingDispatcher()


@pytest.fixture
def tracker():
    return make_tracker
