"""The gateway's rate limits: memory, and Redis shared by several workers (this machine's Redis)."""
import asyncio
import uuid

import pytest

from bot.channels.core.limits import MemoryLimiter, RedisLimiter


def allowed(limiter, key, n):
    async def run():
        return [await limiter.allow(key) for _ in range(n)]
    return asyncio.run(run())


def test_memory_limits_each_key_on_its_own():
    limiter = MemoryLimiter(limit=3, window=60)
    assert allowed(limiter, "a", 5) == [True, True, True, False, False]
    assert allowed(limiter, "b", 1) == [True]


def test_redis_counts_are_shared_by_workers():
    key = "test-" + uuid.uuid4().hex
    first, second = RedisLimiter("redis://127.0.0.1:6379/0", 4, 60), RedisLimiter("redis://127.0.0.1:6379/0", 4, 60)

    async def run():
        try:
            await first.redis.ping()
        except Exception:
            pytest.fail("Redis on 127.0.0.1:6379 is not reachable (.ci/run starts it)")
        return [await first.allow(key), await second.allow(key), await first.allow(key),
                await second.allow(key), await first.allow(key), await second.allow(key)]
    assert asyncio.run(run()) == [True, True, True, True, False, False]


def test_redis_down_still_limits_per_process():
    limiter = RedisLimiter("redis://127.0.0.1:1/0", 2, 60)       # nothing listens there
    assert allowed(limiter, "k", 3) == [True, True, False]
