"""PostgreSQL restarted in the middle of a run: no escalation is lost, none is alerted twice."""
import asyncio
import os
import subprocess
import threading
import time

import pytest

from bot.channels.telegram.api import make_bot
from bot.channels.telegram.staff import TelegramStaffNotifier
from bot.escalation.relay import OutboxRelay
from support.telegram_emulator import TelegramEmulator

STAFF_CHAT = -100555


def restart_postgres():
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                   check=True, timeout=120, capture_output=True)


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_no_escalation_lost_across_a_postgres_restart(database, service):
    if not os.path.isdir("/etc/postgresql"):
        pytest.skip("no local PostgreSQL cluster to restart")
    n = 20
    recorded, errors = [], []

    def patients():
        for i in range(n):
            try:
                recorded.append(service.record(f"conv-pg-{i}", "rest", "urgent", "fever",
                                               [{"concept": "fever"}], [], f"fever {i}").id)
            except Exception as e:       # must not happen: record() retries through the restart
                errors.append(repr(e))
            time.sleep(0.25)

    with TelegramEmulator() as emu:
        bot = make_bot(emu.token, emu.base_url)
        relay = OutboxRelay(database.sessions, service, TelegramStaffNotifier(bot, STAFF_CHAT),
                            is_postgres=True, backoff_base=0.3)
        stop = asyncio.Event()

        async def relay_main(loop_holder):
            loop_holder.append(asyncio.get_running_loop())
            await bot.initialize()
            try:
                await relay.run_forever(stop, poll_seconds=0.2)
            finally:
                await bot.shutdown()

        holder = []
        relay_thread = threading.Thread(target=lambda: asyncio.run(relay_main(holder)), daemon=True)
        relay_thread.start()
        writer = threading.Thread(target=patients)
        writer.start()
        time.sleep(1.5)
        restart_postgres()
        writer.join(timeout=120)
        assert not errors, errors
        assert len(recorded) == n
        deadline = time.time() + 90
        while time.time() < deadline:
            texts = emu.sent_texts(STAFF_CHAT)
            if all(any(ref in t for t in texts) for ref in recorded):
                break
            time.sleep(0.5)
        time.sleep(2)
        holder[0].call_soon_threadsafe(stop.set)
        relay_thread.join(timeout=30)
        texts = emu.sent_texts(STAFF_CHAT)
        counts = {ref: sum(ref in t for t in texts) for ref in recorded}
        assert all(c == 1 for c in counts.values()), counts
