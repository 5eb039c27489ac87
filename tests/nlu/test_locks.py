"""bot/locks.py: tickets for one conversation stay unique when several servers take them at once."""
import threading
import uuid

import pytest
import redis
from rasa.utils.endpoints import EndpointConfig

from bot.locks import AtomicRedisLockStore


@pytest.fixture
def store():
    try:
        redis.StrictRedis(host="127.0.0.1", port=6379, db=1).ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    return lambda: AtomicRedisLockStore(EndpointConfig(url="127.0.0.1", port=6379, db=1))


def test_tickets_issued_at_once_by_many_servers_are_unique_and_in_order(store):
    conversation = "locks-" + uuid.uuid4().hex[:8]
    servers = [store() for _ in range(8)]           # one store each, like separate Rasa servers
    tickets, start = [], threading.Barrier(len(servers))

    def take(s):
        start.wait()
        for _ in range(25):
            tickets.append(s.issue_ticket(conversation, 60))

    threads = [threading.Thread(target=take, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(tickets) == list(range(200))
    lock = servers[0].get_lock(conversation)
    assert len(lock.tickets) == 200 and lock.now_serving == 0


def test_cleanup_keeps_a_waiting_ticket_and_deletes_the_lock_when_nobody_waits(store):
    conversation = "locks-" + uuid.uuid4().hex[:8]
    a, b = store(), store()
    first = a.issue_ticket(conversation, 60)
    second = b.issue_ticket(conversation, 60)
    a.cleanup(conversation, first)
    lock = b.get_lock(conversation)
    assert lock is not None and not lock.is_locked(second)   # the waiting server is served next
    b.cleanup(conversation, second)
    assert b.get_lock(conversation) is None
