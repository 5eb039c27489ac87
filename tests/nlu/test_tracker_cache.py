"""bot/tracker_cache.py: the saved tracker is reused only while the database says it is current."""
import asyncio

from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered

from bot.tracker_cache import CachedSQLTrackerStore

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [greet]
slots:
  pain:
    type: text
    mappings: [{type: custom}]
""")


def _store(tmp_path, name="t.db"):
    return CachedSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / name))


def _turn(store, sender, text):
    async def go():
        tracker = await store.retrieve(sender) or await store.create_tracker(sender)
        tracker.update(UserUttered(text, {"name": "greet", "confidence": 1.0}))
        tracker.update(SlotSet("pain", text))
        tracker.update(ActionExecuted("action_listen"))
        await store.save(tracker)
        return tracker
    return asyncio.run(go())


def test_the_saved_tracker_is_reused_and_matches_the_database(tmp_path):
    store = _store(tmp_path)
    first = _turn(store, "a", "one")
    again = asyncio.run(store.retrieve("a"))
    assert again is first                                   # no rebuild from the rows
    fresh = asyncio.run(CachedSQLTrackerStore.retrieve(_store(tmp_path), "a"))
    assert [e.as_dict()["event"] for e in fresh.events] == [e.as_dict()["event"] for e in again.events]
    assert fresh.get_slot("pain") == again.get_slot("pain") == "one"


def test_a_handed_out_tracker_is_not_served_twice(tmp_path):
    store = _store(tmp_path)
    _turn(store, "a", "one")
    taken = asyncio.run(store.retrieve("a"))
    taken.update(SlotSet("pain", "changed, never saved"))
    second = asyncio.run(store.retrieve("a"))
    assert second is not taken and second.get_slot("pain") == "one"


def test_another_instance_writing_in_between_is_seen(tmp_path):
    a, b = _store(tmp_path), _store(tmp_path)                # two Rasa instances, one database
    _turn(a, "c", "one")
    _turn(b, "c", "two")                                     # b read from the database, wrote turn 2
    seen = asyncio.run(a.retrieve("c"))                      # a's copy is stale: read again
    assert [e.text for e in seen.events if isinstance(e, UserUttered)] == ["one", "two"]
    assert seen.get_slot("pain") == "two"


def test_a_tracker_holding_more_than_the_stored_session_is_not_cached(tmp_path):
    store = _store(tmp_path)
    tracker = _turn(store, "d", "one")

    async def new_session():
        t = await store.retrieve("d")
        t.update(SessionStarted())
        t.update(ActionExecuted("action_listen"))
        await store.save(t)
        return t
    t = asyncio.run(new_session())
    assert len(t.events) > 2 and "d" not in store._cache     # the object also holds the old session
    assert tracker is t
    assert len(asyncio.run(store.retrieve("d")).events) == 2
