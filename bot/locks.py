"""Rasa's Redis lock store, with every change of a conversation's lock made atomically.

Why: Rasa 3.6's RedisLockStore issues a ticket by reading the lock, adding the ticket and writing
the lock back. Two Rasa servers receiving messages of the same conversation at the same moment
can both read the empty lock, both take ticket 0 and both run the turn at once; the SQL tracker
store then keeps only one of the two turns' events (RasaHQ/rasa#9213; the fix, a concurrent lock
store, is not in the open-source 3.6). Seen here: tests/e2e/test_scale_out.py lost a patient's
message that way. This store makes each read-change-write of the lock one Redis transaction
(WATCH/MULTI, retried when another server changed the lock in between), so tickets are unique
and served in order across servers. The waiting and serving logic is Rasa's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore

Holder = list  # [the lock or None]: what change() leaves in it is stored (None deletes the lock)


class AtomicRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: Any = None, **kwargs: Any) -> None:
        """Rasa builds a custom lock store from its endpoint config (endpoints.scale.yml)."""
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs, **kwargs}
        super().__init__(**kwargs)

    def _transact(self, conversation_id: str, change: Callable[[Holder], tuple[Any, bool]]) -> Any:
        """Run change([lock]) and store what it leaves in one Redis transaction; change returns
        (result, whether to write)."""
        key = self.key_prefix + conversation_id
        while True:
            with self.red.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(raw)) if raw else None
                    holder: Holder = [lock]
                    result, write = change(holder)
                    pipe.multi()
                    if write:
                        if holder[0] is None:
                            pipe.delete(key)
                        else:
                            pipe.set(key, holder[0].dumps())
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue  # another server changed the lock meanwhile: read it again

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def change(holder: Holder) -> tuple[int, bool]:
            lock = holder[0] or TicketLock(conversation_id)
            holder[0] = lock
            return lock.issue_ticket(lock_lifetime), True

        try:
            return self._transact(conversation_id, change)
        except redis.RedisError as e:
            raise LockError(f"Error while acquiring lock. Error:\n{e}") from e

    def update_lock(self, conversation_id: str) -> None:
        def change(holder: Holder) -> tuple[None, bool]:
            if holder[0] is None:
                return None, False
            holder[0].remove_expired_tickets()
            return None, True

        self._transact(conversation_id, change)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        def change(holder: Holder) -> tuple[None, bool]:
            if holder[0] is None:
                return None, False
            holder[0].remove_ticket_for(ticket_number)
            return None, True

        self._transact(conversation_id, change)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Finish this ticket and delete the lock if nobody waits, as one step (Rasa does it in
        three, between which another server's new ticket could be deleted with the lock)."""

        def change(holder: Holder) -> tuple[None, bool]:
            lock = holder[0]
            if lock is None:
                return None, False
            lock.remove_ticket_for(ticket_number)
            if not lock.is_someone_waiting():
                holder[0] = None
            return None, True

        self._transact(conversation_id, change)
