"""Rate limits per sender and per client address: a flood from one client must not make a flood
of escalations and staff alerts, nor slow another patient's answer.

A fixed window per key: at most `limit` messages in `window` seconds. Redis when configured (so
several gateway workers share the counts), memory otherwise.
"""

from __future__ import annotations

import time
from collections import OrderedDict


class MemoryLimiter:
    """Counts in this process (bounded: the oldest keys are dropped past max_keys)."""

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()

    async def allow(self, key: str) -> bool:
        now = time.monotonic()
        start, count = self._counts.get(key, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        count += 1
        self._counts[key] = (start, count)
        self._counts.move_to_end(key)
        while len(self._counts) > self.max_keys:
            self._counts.popitem(last=False)
        return count <= self.limit


class RedisLimiter:
    """INCR with an expiry per window, shared by every worker that uses the same Redis."""

    def __init__(self, url: str, limit: int, window: float, prefix: str = "hsg:rate:") -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.limit, self.window, self.prefix = limit, window, prefix
        self._fallback = MemoryLimiter(limit, window)

    async def allow(self, key: str) -> bool:
        bucket = int(time.time() // self.window)
        name = f"{self.prefix}{key}:{bucket}"
        try:
            pipe = self.redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, int(self.window) + 1)
            count, _ = await pipe.execute()
        except Exception:  # Redis down: still limited, per process
            return await self._fallback.allow(key)
        return int(count) <= self.limit


def limiter(redis_url: str | None, limit: int, window: float):
    return RedisLimiter(redis_url, limit, window) if redis_url else MemoryLimiter(limit, window)
