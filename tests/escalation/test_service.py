"""The escalation service on SQLite and on the real PostgreSQL of this machine."""
import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from bot.store.models import AuditEntry, Escalation, OutboxMessage

FINDINGS = [{"concept": "fever", "level": "urgent", "text": "fever"}]


def record(service, conv="conv-1", level="urgent", words="I have a fever"):
    return service.record(conv, "rest", level, "fever", FINDINGS, ["fever -> urgent"], words,
                          transcript=[{"who": "patient", "text": words}], days_since_procedure=1,
                          contact={"channel": "rest", "how": "test"})


def outbox(database):
    with database.sessions() as s:
        return s.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()


def audit_actions(database, escalation_id=None):
    with database.sessions() as s:
        q = select(AuditEntry).order_by(AuditEntry.id)
        if escalation_id:
            q = q.where(AuditEntry.escalation_id == escalation_id)
        return [a.action for a in s.execute(q).scalars()]


def test_a_red_flag_opens_an_escalation_with_its_outbox_row_and_audit(service, database):
    r = record(service)
    assert r.created and r.id.startswith("H-")
    esc = service.get(r.id)
    assert esc.status == "open" and esc.level == "urgent" and esc.patient_words[0]["text"] == "I have a fever"
    rows = outbox(database)
    assert [(o.kind, o.status, o.idempotency_key) for o in rows] == [("alert", "pending", f"{r.id}:alert:*")]
    assert audit_actions(database, r.id) == ["escalation_opened"]


def test_repeated_red_flags_update_one_escalation_without_new_alerts(service, database):
    first = record(service)
    again = record(service, words="still feverish")
    assert again.id == first.id and not again.created and not again.realerted
    assert [w["text"] for w in service.get(first.id).patient_words] == ["I have a fever", "still feverish"]
    assert len(outbox(database)) == 1


def test_a_more_urgent_level_realerts(service, database):
    first = record(service)
    up = record(service, level="emergency", words="I fainted")
    assert up.id == first.id and up.realerted
    assert service.get(first.id).level == "emergency"
    assert [o.kind for o in outbox(database)] == ["alert", "realert"]


def test_other_conversations_and_resolved_episodes_get_their_own(service, nurse):
    a = record(service, conv="conv-a")
    b = record(service, conv="conv-b")
    assert a.id != b.id
    service.resolve(a.id, nurse.id, "dashboard", "called back, fine")
    c = record(service, conv="conv-a", words="fever again")
    assert c.created and c.id != a.id


def test_acknowledge_and_resolve_by_a_roster_nurse(service, database, nurse):
    r = record(service)
    res = service.acknowledge(r.id, None, "telegram", telegram_user_id=nurse.telegram_user_id)
    assert res.ok and res.status == "acknowledged" and "Nurse Ada" in res.message
    esc = service.get(r.id)
    assert esc.acknowledged_by == nurse.id and esc.acknowledged_at is not None
    res = service.resolve(r.id, nurse.id, "dashboard", "rang her, advised A&E")
    assert res.ok and service.get(r.id).resolution_note == "rang her, advised A&E"
    assert audit_actions(database, r.id) == ["escalation_opened", "acknowledged", "resolved"]
    assert [o.kind for o in outbox(database)] == ["alert", "update", "update"]


def test_someone_not_on_the_roster_is_refused_and_audited(service, database):
    r = record(service)
    res = service.acknowledge(r.id, None, "telegram", telegram_user_id=999)
    assert not res.ok and service.get(r.id).status == "open"
    with database.sessions() as s:
        refused = s.execute(select(AuditEntry).where(AuditEntry.action == "acknowledge_refused")).scalars().one()
    assert refused.actor_id == "telegram:999" and refused.escalation_id == r.id


def test_timers_resend_then_tell_the_patient(database, nurse):
    from bot.escalation.service import Escalations
    now = [dt.datetime(2026, 1, 1, 12, 0)]
    svc = Escalations(database.sessions, resend_after_minutes=10, tell_patient_after_minutes=20,
                      clock=lambda: now[0])
    r = svc.record("conv-t", "rest", "urgent", "fever", FINDINGS, [], "fever")
    assert svc.tick() == 0
    now[0] += dt.timedelta(minutes=11)
    assert svc.tick() == 1
    now[0] += dt.timedelta(minutes=10)
    assert svc.tick() == 2          # a second re-send and the patient notice
    kinds = [o.kind for o in outbox(database)]
    assert kinds == ["alert", "resend", "resend", "patient_notice"]
    svc.acknowledge(r.id, nurse.id, "dashboard")
    now[0] += dt.timedelta(minutes=30)
    assert svc.tick() == 0          # acknowledged: the timers stop


def test_only_red_flags_are_escalated(service):
    with pytest.raises(ValueError):
        record(service, level="routine")


def test_the_audit_log_is_append_only(service, database):
    record(service)
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            with database.engine.begin() as c:
                c.execute(text(statement))


def test_queue_orders_emergencies_first(service):
    record(service, conv="c1", level="urgent")
    record(service, conv="c2", level="emergency")
    assert [e.level for e in service.queue()] == ["emergency", "urgent"]


def test_the_schema_is_what_the_models_say(database):
    """Alembic's migrations and the models agree (no pending autogenerate diff)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bot.store.models import metadata
    with database.engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), metadata)
    assert diff == []
