"""Staff accounts that hold: the login throttle in the database, roster changes that end access at
once, password cost and rehash, names never stored in clear, admins, the second factor, and the
live feed behind the alarm."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from bot.store.models import AuditEntry, Staff, StaffSession
from bot.staff import passwords, roster
from bot.staff.roster import add_staff
from bot.staff.throttle import Limits

from .conftest import NURSE_NAME, NURSE_PASSWORD, csrf_of, login, mount, page_csrf, record, run

ROOT = Path(__file__).resolve().parents[2]
LIMITS = Limits(per_name=10, per_address=5, first_backoff=dt.timedelta(seconds=30))   # configured


def audits(database, action):
    with database.sessions() as s:
        return s.execute(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).scalars().all()


def from_address(address):
    return {"X-Forwarded-For": address}


async def login_from(client, address, name=NURSE_NAME, password=NURSE_PASSWORD, code=None):
    page = await client.get("/staff/login", headers=from_address(address))
    data = {"name": name, "password": password, "csrf_token": csrf_of(await page.text())}
    if code is not None:
        data["code"] = code
    return await client.post("/staff/login", data=data, headers=from_address(address), allow_redirects=False)


def test_sixty_simultaneous_wrong_passwords_check_at_most_the_limit(service, database, clock, nurse):
    app = mount(service, database, clock, login_limits=LIMITS, trust_forwarded_for=True)

    async def scenario(client):
        pages = [await client.get("/staff/login", headers=from_address("203.0.113.9")) for _ in range(60)]
        tokens = [csrf_of(await p.text()) for p in pages]
        # one login cookie per client in real life; here all share the jar, so use the last token
        token = tokens[-1]
        guesses = [client.post("/staff/login", headers=from_address("203.0.113.9"), allow_redirects=False,
                               data={"name": NURSE_NAME, "password": f"guess {i}", "csrf_token": token})
                   for i in range(60)]
        answers = await asyncio.gather(*guesses)
        statuses = [a.status for a in answers]
        assert statuses.count(429) >= 55 and all(s in (200, 429) for s in statuses)
        # the nurse, from her own computer, is not locked out
        client.session.cookie_jar.clear()
        ok = await login_from(client, "198.51.100.7")
        assert ok.status == 303
        # the guessing address waits out its backoff, then may try again
        client.session.cookie_jar.clear()
        assert (await login_from(client, "203.0.113.9")).status == 429
        clock.advance(seconds=31)
        client.session.cookie_jar.clear()
        assert (await login_from(client, "203.0.113.9")).status == 303

    run(app, scenario)
    checked = [a for a in audits(database, "login_failed") if a.detail["reason"] == "wrong name or password"]
    throttled = [a for a in audits(database, "login_failed") if a.detail["reason"].startswith("throttled")]
    print(f"\n60 simultaneous wrong passwords: {len(checked)} checked, {len(throttled)} refused unchecked")
    assert len(checked) <= LIMITS.per_address and len(checked) + len(throttled) >= 60


def test_guessing_one_name_from_many_addresses_earns_only_short_pauses(service, database, clock, nurse):
    app = mount(service, database, clock, login_limits=LIMITS, trust_forwarded_for=True)

    async def scenario(client):
        for i in range(LIMITS.per_name):
            client.session.cookie_jar.clear()
            assert (await login_from(client, f"192.0.2.{i}", password="wrong guess")).status == 200
        client.session.cookie_jar.clear()
        assert (await login_from(client, "192.0.2.200", password="wrong again")).status == 429
        clock.advance(seconds=31)               # a backoff, not a lock of the account
        client.session.cookie_jar.clear()
        assert (await login_from(client, "198.51.100.7")).status == 303

    run(app, scenario)


def test_a_deactivated_nurse_loses_her_session_at_once_and_her_buttons_are_refused(service, database, clock, nurse):
    app = mount(service, database, clock)
    ref = record(service).id

    async def scenario(client):
        assert (await login(client)).status == 303
        assert (await client.get("/staff/", allow_redirects=False)).status == 200
        roster.deactivate(NURSE_NAME, database.sessions)
        r = await client.get("/staff/", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"].startswith("/staff/login")   # the session is gone
        assert (await login(client)).status == 200          # and she cannot sign in again

    run(app, scenario)
    with database.sessions() as s:
        assert s.execute(select(StaffSession)).scalars().all() == []
    result = service.acknowledge(ref, None, "telegram", telegram_user_id=nurse.telegram_user_id)
    assert not result.ok and service.get(ref).status == "open"
    [row] = audits(database, "staff_deactivated")
    assert row.detail["sessions_ended"] == 1


def test_the_live_feed_sends_the_waiting_escalations_and_ends_with_the_session(service, database, clock, nurse):
    app = mount(service, database, clock, live_every=0.1)
    ref = record(service, level="emergency").id

    async def scenario(client):
        await login(client)
        feed = await client.get("/staff/events")
        assert feed.headers["Content-Type"].startswith("text/event-stream")
        first = (await feed.content.readuntil(b"\n\n")).decode()
        state = json.loads(first.split("data: ", 1)[1])
        assert state["waiting"] == 1 and state["emergency"] == 1 and state["items"] == [
            {"id": ref, "level": "emergency"}]
        roster.deactivate(NURSE_NAME, database.sessions)
        ended = (await asyncio.wait_for(feed.content.readuntil(b"\n\n"), 5)).decode()
        assert ended.startswith("event: ended")

    run(app, scenario)


def test_roster_changes_on_the_dashboard_are_for_admins_only(service, database, clock, nurse):
    add_staff("Admin Ann", None, "an admin's long password", sessions=database.sessions, role="admin")
    app = mount(service, database, clock)

    async def scenario(client):
        await login(client)
        assert (await client.get("/staff/roster")).status == 403
        token = await page_csrf(client)
        r = await client.post(f"/staff/roster/{nurse.id}/deactivate", data={"csrf_token": token},
                              allow_redirects=False)
        assert r.status == 403
        client.session.cookie_jar.clear()
        await login(client, "Admin Ann", "an admin's long password")
        page = await client.get("/staff/roster")
        assert page.status == 200 and NURSE_NAME in await page.text()
        token = csrf_of(await page.text())
        r = await client.post(f"/staff/roster/{nurse.id}/deactivate", data={"csrf_token": token},
                              allow_redirects=False)
        assert r.status == 303

    run(app, scenario)
    assert [m.active for m in roster.roster(database.sessions) if m.name == NURSE_NAME] == [False]
    [row] = audits(database, "staff_deactivated")
    assert row.actor_type == "staff"


def test_names_typed_at_login_are_never_stored_in_clear(service, database, clock, nurse):
    app = mount(service, database, clock)

    async def scenario(client):
        await login(client, name=NURSE_PASSWORD, password="whatever it was")

    run(app, scenario)
    with database.sessions() as s:
        everything = json.dumps([[a.action, a.detail] for a in s.execute(select(AuditEntry)).scalars()])
    assert NURSE_PASSWORD not in everything and "name_hash" in everything


def test_owasp_cost_by_default_and_older_hashes_are_upgraded_at_login(service, database, clock, monkeypatch):
    monkeypatch.delenv("HSG_SCRYPT_LOG2N")
    assert passwords.cost() == 17 and passwords.hash_password("x" * 12).startswith("scrypt$17$8$1$")
    monkeypatch.setenv("HSG_SCRYPT_LOG2N", "15")
    legacy = "scrypt$" + "$".join(_legacy_hash(NURSE_PASSWORD))           # 0001's N = 2^14 format
    with database.sessions() as s, s.begin():
        s.add(Staff(name=NURSE_NAME, password_hash=legacy))
    app = mount(service, database, clock)

    async def scenario(client):
        assert (await login(client)).status == 303

    run(app, scenario)
    with database.sessions() as s:
        stored = s.execute(select(Staff.password_hash)).scalar_one()
    assert stored.startswith("scrypt$15$") and passwords.verify_password(NURSE_PASSWORD, stored)
    assert len(audits(database, "password_rehashed")) == 1


def _legacy_hash(password):
    import base64
    import hashlib
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2 ** 14, r=8, p=1, dklen=32)
    return base64.b64encode(salt).decode(), base64.b64encode(digest).decode()


def test_a_second_factor_when_the_nurse_has_one(service, database, clock, nurse):
    secret = pyotp.random_base32()
    roster.set_totp(NURSE_NAME, secret, database.sessions)
    app = mount(service, database, clock)

    async def scenario(client):
        assert (await login_from(client, "127.0.0.1")).status == 200                 # no code
        client.session.cookie_jar.clear()
        assert (await login_from(client, "127.0.0.1", code="000000" if pyotp.TOTP(secret).now() != "000000"
                                 else "111111")).status == 200
        client.session.cookie_jar.clear()
        assert (await login_from(client, "127.0.0.1", code=pyotp.TOTP(secret).now())).status == 303

    run(app, scenario)


def test_the_staff_commands_change_the_roster_and_are_audited(database, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database.url}

    def staff(*args, stdin=None):
        return subprocess.run([sys.executable, "-m", "bot", "staff", *args], cwd=ROOT, env=env, input=stdin,
                              capture_output=True, text=True, timeout=60)

    assert staff("add", "Nurse Cy", "--telegram-id", "77", "--password-stdin", stdin="a long password 1\n").returncode == 0
    assert staff("set-telegram", "Nurse Cy", "78").returncode == 0
    assert staff("passwd", "Nurse Cy", "--password-stdin", stdin="a long password 2\n").returncode == 0
    assert staff("set-role", "Nurse Cy", "admin").returncode == 0
    assert staff("deactivate", "Nurse Cy").returncode == 0
    listed = staff("list")
    assert "Nurse Cy" in listed.stdout and "admin" in listed.stdout and "NO" in listed.stdout
    missing = staff("deactivate", "Nurse Nobody")
    assert missing.returncode == 2 and "nobody called" in missing.stderr
    assert [a.action for a in audits(database, "staff_added")] == ["staff_added"]
    for action in ("staff_telegram_set", "staff_password_set", "staff_role_set", "staff_deactivated"):
        assert len(audits(database, action)) == 1, action
    [m] = roster.roster(database.sessions)
    assert m.telegram_user_id == 78 and m.role == "admin" and not m.active


def test_an_admin_exports_and_forgets_a_patients_data_from_the_dashboard(service, database, clock, nurse):
    from bot import patients

    add_staff("Admin Ann", None, "an admin's long password", sessions=database.sessions, role="admin")
    ref = record(service, conv="conv-rights").id
    patients.record_consent("conv-rights", "telegram", "9090", sessions=database.sessions)
    app = mount(service, database, clock)

    async def scenario(client):
        await login(client)                                             # a nurse: refused
        token = await page_csrf(client, f"/staff/escalations/{ref}")
        r = await client.post(f"/staff/escalations/{ref}/patient/export", data={"csrf_token": token})
        assert r.status == 403
        client.session.cookie_jar.clear()
        await login(client, "Admin Ann", "an admin's long password")
        page = await client.get(f"/staff/escalations/{ref}")
        token = csrf_of(await page.text())
        r = await client.post(f"/staff/escalations/{ref}/patient/export", data={"csrf_token": token})
        assert r.status == 200 and "attachment" in r.headers["Content-Disposition"]
        data = json.loads(await r.text())
        assert data["contact"]["address"] == "9090" and data["escalations"][0]["reference"] == ref
        r = await client.post(f"/staff/escalations/{ref}/patient/forget", data={"csrf_token": token},
                              allow_redirects=False)
        assert r.status == 303 and r.headers["Location"].endswith("?done=forgotten")

    run(app, scenario)
    assert patients.lookup("conv-rights", database.sessions) is None and service.get(ref) is not None
    assert [a.action for a in audits(database, "dashboard_patient_export")] == ["dashboard_patient_export"]
    assert audits(database, "patient_data_refused") and audits(database, "patient_data_forgotten")
