"""Driving the outbox relay in a test: a number of rounds against a started Bot API client."""
import asyncio


def drain(relay, bot, rounds=40, pause=0.1):
    """Run the relay `rounds` times, `pause` seconds apart, with the bot's HTTP client open."""
    async def go():
        await bot.initialize()
        try:
            for _ in range(rounds):
                await relay.run_once()
                await asyncio.sleep(pause)
        finally:
            await bot.shutdown()
    asyncio.run(go())
