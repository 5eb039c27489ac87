"""A local spool for escalations the database would not take: nothing is lost while it is down.

When the gateway answers a red flag itself and the database refuses the escalation, the record
(plain data) is written to data_dir/spool/ (0600, written whole then renamed into place) and an
ERROR is logged for the operators. A replayer in the web app tries the spool again every few
seconds; a record leaves the spool only once the database has committed it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, folder: Path, warn: Callable[[int], None] | None = None) -> None:
        self.folder = Path(folder)
        self.warn = warn  # a second path to the staff (bot.channels.core.staff_warning)

    def put(self, record: dict[str, Any]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        name = f"{uuid.uuid4().hex}.json"
        tmp = self.folder / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        path = self.folder / name
        os.replace(tmp, path)
        log.error(
            "an escalation could not be committed and is spooled; it will be replayed "
            "(database unavailable: tell the clinic's IT)"
        )
        if self.warn is not None:
            self.warn(self.pending())
        return path

    def pending(self) -> int:
        return len(list(self.folder.glob("*.json"))) if self.folder.exists() else 0

    def replay(self, commit: Callable[[dict[str, Any]], Any]) -> int:
        """Commit every spooled record (oldest first); returns how many went in."""
        done = 0
        if not self.folder.exists():
            return 0
        for path in sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                commit(record)
            except Exception as e:  # noqa: BLE001 - still down: try again later
                log.warning("spool replay deferred: %s", type(e).__name__)
                break
            path.unlink()
            done += 1
        if done:
            log.info("%d spooled escalation(s) committed", done)
        return done

    async def replay_forever(self, commit: Callable[[dict[str, Any]], Any], every: float = 5.0) -> None:
        while True:
            if self.pending():
                await asyncio.to_thread(self.replay, commit)
            await asyncio.sleep(every)
