"""The patient's data over its whole life, on SQLite and PostgreSQL: retention purge (with the
audit log archived, then pruned through the one allowed path), export, forget, backup and restore,
each writing its audit row."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from bot import patients
from bot.escalation.service import Escalations
from bot.settings import Retention
from bot.store.backup import backup, restore
from bot.store.db import Database, transaction
from bot.store.models import AuditEntry, Conversation, Escalation, OutboxMessage, PatientContact, TelegramUpdate, utcnow
from bot.store.retention import purge
from support.databases import PG_URL

ROOT = Path(__file__).resolve().parents[2]
FINDINGS = [{"concept": "fever", "level": "urgent", "text": "fever"}]
NOW = utcnow()
LONG_AGO = NOW - dt.timedelta(days=4000)


def record(service, conv, words="I have a fever of 38.9"):
    return service.record(conv, "telegram", "urgent", "fever", FINDINGS, ["fever -> urgent"], words,
                          days_since_procedure=1, contact={"channel": "telegram", "how": "Telegram"})


def actions(database, action):
    with database.sessions() as s:
        return s.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars().all()


def old_world(database, nurse):
    """An escalation resolved 11 years ago, its outbox rows, an old processed Telegram update,
    an old conversation with a contact and no escalation, and old audit rows."""
    then = Escalations(database.sessions, clock=lambda: LONG_AGO)
    old = record(then, "conv-old").id
    then.resolve(old, nurse.id, "dashboard", "called back, fine")
    with transaction(database.sessions) as s:
        s.add(Conversation(id="conv-quiet", channel="telegram", created_at=LONG_AGO))
        s.flush()
        s.add(PatientContact(conversation_id="conv-quiet", channel="telegram", address="555", consent_at=LONG_AGO))
        s.add(TelegramUpdate(update_id=1, payload={"update_id": 1}, received_at=LONG_AGO, processed_at=LONG_AGO))
        s.execute(OutboxMessage.__table__.update().values(status="sent", created_at=LONG_AGO))
    with transaction(database.sessions) as s:      # audit rows cannot be updated: insert old ones
        s.add(AuditEntry(at=LONG_AGO, actor_type="system", action="ancient_event", detail={"n": 1}))
    return old


def test_purge_deletes_what_is_past_its_period_archives_the_audit_log_and_keeps_the_rest(database, nurse, tmp_path):
    old = old_world(database, nurse)
    recent = record(Escalations(database.sessions), "conv-new").id
    done = purge(database.sessions, Retention(), tmp_path / "archive",
                 tracker_purge=lambda cutoff: 2 if cutoff < NOW.timestamp() else 0)
    # the old escalation goes, and then its conversation (no escalation left) with the quiet one
    assert done.counts["escalations"] == 1 and done.counts["conversations"] == 2 and done.counts["contacts"] == 1
    assert done.counts["telegram_updates"] == 1 and done.counts["outbox"] >= 1 and done.counts["rasa_conversations"] == 2
    assert done.counts["audit_rows"] >= 1
    with database.sessions() as s:
        assert s.get(Escalation, old) is None and s.get(Escalation, recent) is not None
        assert s.get(Conversation, "conv-quiet") is None and s.get(Conversation, "conv-old") is None
        assert s.get(Conversation, "conv-new") is not None
        left = {a.action for a in s.execute(select(AuditEntry)).scalars()}
    assert "ancient_event" not in left and {"retention_purge", "audit_log_pruned", "retention_purge_rasa"} <= left
    archived = [json.loads(line) for line in gzip.decompress(done.archive.read_bytes()).decode().splitlines()]
    assert "ancient_event" in {a["action"] for a in archived}
    [pruned] = actions(database, "audit_log_pruned")
    assert pruned.detail["archive"] == done.archive.name and len(pruned.detail["archive_sha256"]) == 64
    assert oct(done.archive.stat().st_mode & 0o777) == "0o600"
    # outside the purge the audit log is still append-only
    with pytest.raises(Exception, match="append-only"):
        with transaction(database.sessions) as s:
            s.execute(AuditEntry.__table__.delete())


def test_export_gives_everything_held_and_is_audited(database, service):
    ref = record(service, "conv-e", words="fever 38.9 and <b>shivers</b>").id
    patients.record_consent("conv-e", "telegram", "4242", sessions=database.sessions)
    data = patients.export(ref, sessions=database.sessions, rasa_events=lambda cid: [{"event": "user", "id": cid}])
    assert data["conversation"]["id"] == "conv-e" and data["contact"]["address"] == "4242"
    assert data["escalations"][0]["reference"] == ref
    assert data["escalations"][0]["patient_words"][0]["text"] == "fever 38.9 and <b>shivers</b>"
    assert data["rasa_events"] == [{"event": "user", "id": "conv-e"}]
    assert "escalation_opened" in {a["action"] for a in data["audit"]}
    assert patients.export("H-NOSUCH", sessions=database.sessions) is None
    [row] = actions(database, "patient_data_exported")
    assert row.detail["conversation"] == "conv-e" and "shivers" not in json.dumps(row.detail)


def test_forget_deletes_the_contact_keeps_the_clinical_record_and_says_so(database, service, tmp_path):
    ref = record(service, "conv-f").id
    patients.record_consent("conv-f", "telegram", "777", sessions=database.sessions)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database.url,
           "RASA_ENDPOINTS": str(_empty_tracker_store(tmp_path))}
    out = subprocess.run([sys.executable, "-m", "bot", "patient", "forget", ref], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "deleted: the contact and consent (yes)" in out.stdout and "kept: 1 escalation(s)" in out.stdout
    with database.sessions() as s:
        assert s.get(PatientContact, "conv-f") is None and s.get(Escalation, ref) is not None
        assert s.get(Conversation, "conv-f").forgotten_at is not None
    [row] = actions(database, "patient_data_forgotten")
    assert row.detail["escalations_kept"] == 1 and row.detail["via"] == "cli"


def _empty_tracker_store(tmp_path):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{tmp_path / "tracker.db"}"\n')
    return endpoints


def test_backup_restores_into_an_empty_database_with_every_escalation_and_the_id_secret(database, service, tmp_path):
    refs = sorted(record(service, f"conv-b{i}").id for i in range(3))
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "telegram_id_secret").write_text("s3cret-id-key")
    archive = backup(database, data_dir, tmp_path / "backups")
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    target_url, drop = _empty_target(database, tmp_path)
    try:
        restored_dir = tmp_path / "restored-var"
        found = restore(archive, target_url, restored_dir)
        assert found["escalations"] == found["expected"] == 3
        assert (restored_dir / "telegram_id_secret").read_text() == "s3cret-id-key"
        target = Database(target_url)
        with target.sessions() as s:
            assert sorted(s.execute(select(Escalation.id)).scalars()) == refs
            restored_actions = {a.action for a in s.execute(select(AuditEntry)).scalars()}
        assert {"backup_made", "backup_restored"} <= restored_actions
        with pytest.raises(ValueError, match="already holds escalations"):
            restore(archive, target_url, restored_dir)
        target.dispose()
    finally:
        drop()
    assert actions(database, "backup_made")


def _empty_target(database, tmp_path):
    """An empty database of the same kind: a new SQLite file, or a new PostgreSQL database."""
    if not database.is_postgres:
        return f"sqlite:///{tmp_path / 'restored.db'}", lambda: None
    name = "restore_" + uuid.uuid4().hex[:10]
    admin = create_engine(PG_URL, future=True, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(database.url).set(database=name).render_as_string(hide_password=False)

    def drop():
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return url, drop
