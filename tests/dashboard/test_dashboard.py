"""The nurses' dashboard over HTTP (mounted at /staff/ of a parent app), on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import statistics
import time

import pytest
from aiohttp import web
from sqlalchemy import select, update

from bot.store.models import Escalation, OutboxMessage, Staff, StaffSession
from bot.staff.roster import add_staff
from bot.staff.throttle import name_key

from .conftest import (NURSE_NAME, NURSE_PASSWORD, XSS_WORDS, audit_rows, csrf_of, login, mount, page_csrf,
                       record, run)

CSP = ("default-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
PATIENT_BITS = ("bleeding a lot", "alert(1)", "heavy bleeding", "pads an hour", "Please call the clinic")


def esc_row(database, escalation_id) -> Escalation:
    with database.sessions() as s:
        return s.get(Escalation, escalation_id)


def session_rows(database):
    with database.sessions() as s:
        return list(s.execute(select(StaffSession)).scalars())


def actions(database, escalation_id=None):
    return [a.action for a in audit_rows(database, escalation_id=escalation_id)]


def card(page: str, ref: str) -> str:
    """The queue card of one escalation."""
    at = page.index(f">{ref}<")
    start = page.rindex('<li class="card', 0, at)
    return page[start:page.index("</li>", at)]


def assert_no_patient_data(body: str, reference: str) -> None:
    assert reference not in body
    for bit in PATIENT_BITS:
        assert bit not in body, bit


# -- no session, no data ------------------------------------------------------------------------

def test_every_route_without_a_session_gives_no_data(app, service, database, nurse):
    ref = record(service).id

    async def scenario(client):
        probes = [
            ("GET", "/staff", None), ("GET", "/staff/", None), ("GET", "/staff/?auto=1", None),
            ("GET", f"/staff/escalations/{ref}", None), ("GET", "/staff/escalations/H-NOSUCH", None),
            ("GET", "/staff/no/such/page", None), ("GET", "/staff/logout", None),
            ("POST", f"/staff/escalations/{ref}/acknowledge", {"csrf_token": "x" * 43}),
            ("POST", f"/staff/escalations/{ref}/resolve", {"csrf_token": "x" * 43, "note": "done"}),
            ("POST", f"/staff/escalations/{ref}/acknowledge", None),
            ("POST", "/staff/logout", None), ("POST", "/staff/", None), ("HEAD", "/staff/", None),
            ("GET", "/staff/static/../templates/queue.html", None),
        ]
        for cookie in (None, "not-a-token", "A" * 43):
            client.session.cookie_jar.clear()
            if cookie:
                client.session.cookie_jar.update_cookies({"hsg_staff_session": cookie})
            for method, path, data in probes:
                r = await client.request(method, path, data=data, allow_redirects=False)
                body = await r.text()
                assert r.status in (303, 401, 403, 404), (method, path, r.status)
                assert_no_patient_data(body, ref)
                assert ref not in r.headers.get("Location", "")
                assert r.headers.get("Location", "/staff/login").startswith("/staff/"), (path, r.headers)
                if r.status == 303 and path != "/staff":
                    assert r.headers["Location"].startswith("/staff/login"), (method, path)
            # following the redirects ends on the login page, which shows nothing of the patient
            r = await client.get(f"/staff/escalations/{ref}")
            assert r.status == 200 and str(r.url).endswith("/staff/login")
            body = await r.text()
            assert "Nurses' sign in" in body
            assert_no_patient_data(body, ref)

    run(app, scenario)
    esc = esc_row(database, ref)
    assert esc.status == "open" and esc.acknowledged_at is None          # nothing changed
    assert not [a for a in actions(database) if a.startswith("dashboard_")]


# -- logging in -----------------------------------------------------------------------------------

def test_login_success_sets_a_hardened_cookie_and_a_hashed_session(app, service, database, nurse):
    async def scenario(client):
        r = await login(client)
        assert r.status == 303 and r.headers["Location"] == "/staff/"
        cookies = [c for c in r.headers.getall("Set-Cookie") if c.startswith("hsg_staff_session=")]
        assert len(cookies) == 1
        attrs = [a.strip().lower() for a in cookies[0].split(";")]
        assert "httponly" in attrs and "samesite=strict" in attrs and "path=/staff/" in attrs
        assert "secure" not in attrs
        token = cookies[0].split(";")[0].split("=", 1)[1]
        assert len(token) == 43
        r = await client.get("/staff/", allow_redirects=False)
        assert r.status == 200 and "Signed in as" in await r.text()
        # the login page now sends a signed-in nurse to the queue
        r = await client.get("/staff/login", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/staff/"
        return token

    token = run(app, scenario)
    rows = session_rows(database)
    assert len(rows) == 1
    assert rows[0].token_hash == hashlib.sha256(token.encode()).hexdigest() != token
    assert rows[0].staff_id == nurse.id and len(rows[0].csrf_token) >= 32
    logins = audit_rows(database, "login")
    assert [(a.actor_type, a.actor_id) for a in logins] == [("staff", str(nurse.id))]


def test_secure_cookies_when_asked(service, database, clock, nurse):
    app = mount(service, database, clock, cookie_secure=True)

    async def scenario(client):
        page = await client.get("/staff/login")
        login_cookie = [c for c in page.headers.getall("Set-Cookie") if c.startswith("hsg_staff_login=")][0]
        assert "secure" in [a.strip().lower() for a in login_cookie.split(";")]
        token = csrf_of(await page.text())
        # the test client speaks http, so it keeps Secure cookies to itself: send the login one by hand
        r = await client.post("/staff/login", data={"name": NURSE_NAME, "password": NURSE_PASSWORD,
                                                    "csrf_token": token},
                              headers={"Cookie": f"hsg_staff_login={token}"}, allow_redirects=False)
        assert r.status == 303
        cookie = [c for c in r.headers.getall("Set-Cookie") if c.startswith("hsg_staff_session=")][0]
        assert "secure" in [a.strip().lower() for a in cookie.split(";")]
        # an http Origin is refused when the dashboard is meant to be served over https
        r = await client.post("/staff/login", data={"csrf_token": token},
                              headers={"Cookie": f"hsg_staff_login={token}",
                                       "Origin": str(client.make_url("/")).rstrip("/")}, allow_redirects=False)
        assert r.status == 403

    run(app, scenario)


def test_unknown_name_and_wrong_password_get_the_same_answer_and_are_audited(app, service, database, nurse):
    async def timed(client, name, password):
        start = time.perf_counter()
        r = await login(client, name, password)
        return r, await r.text(), time.perf_counter() - start

    async def scenario(client):
        wrong, wrong_body, _ = await timed(client, NURSE_NAME, "not the password")
        unknown, unknown_body, _ = await timed(client, "Nurse Nobody", "not the password")
        assert wrong.status == unknown.status == 200
        assert "did not match" in wrong_body
        assert wrong_body.replace(NURSE_NAME, "NAME") == unknown_body.replace("Nurse Nobody", "NAME")
        assert not [c for c in wrong.headers.getall("Set-Cookie", []) if c.startswith("hsg_staff_session=")]
        # timing: both do the same scrypt work (medians of a few tries, generous bounds)
        t_wrong = [(await timed(client, NURSE_NAME, f"bad {i}"))[2] for i in range(2)]
        t_unknown = [(await timed(client, f"Nobody {i}", "bad"))[2] for i in range(2)]
        ratio = statistics.median(t_wrong) / statistics.median(t_unknown)
        assert 0.33 < ratio < 3, (t_wrong, t_unknown)
        r = await client.get("/staff/", allow_redirects=False)
        assert r.status == 303

    run(app, scenario)
    failed = audit_rows(database, "login_failed")
    assert len(failed) == 6
    assert (failed[0].actor_type, failed[0].actor_id) == ("staff", str(nurse.id))
    assert (failed[1].actor_type, failed[1].actor_id) == ("unknown", None)
    assert failed[1].detail["name_hash"] == name_key("Nurse Nobody")
    assert "Nurse Nobody" not in str(failed[1].detail) and "not the password" not in str(failed[1].detail)
    assert not session_rows(database) and not audit_rows(database, "login")


def test_inactive_staff_cannot_log_in_and_their_sessions_end(app, service, database, nurse):
    async def scenario(client):
        assert (await login(client)).status == 303
        with database.sessions() as s, s.begin():
            s.execute(update(Staff).where(Staff.id == nurse.id).values(active=False))
        r = await client.get("/staff/", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/staff/login?ended=1"
        r = await login(client)
        assert r.status == 200 and "did not match" in await r.text()

    run(app, scenario)
    assert not session_rows(database)
    assert audit_rows(database, "session_expired")[0].detail["reason"] == "staff no longer active"


def test_a_name_backs_off_after_five_failures(app, service, database, clock, nurse):
    async def scenario(client):
        for i in range(5):
            r = await login(client, NURSE_NAME, f"wrong {i}")
            assert r.status == 200 and "did not match" in await r.text()
        r = await login(client, NURSE_NAME, "wrong 5")
        assert r.status == 429 and "Too many attempts. Wait 30 seconds" in await r.text()
        # during the backoff even the right password is refused, without a session
        r = await login(client, NURSE_NAME, NURSE_PASSWORD)
        assert r.status == 429
        assert not [c for c in r.headers.getall("Set-Cookie", []) if c.startswith("hsg_staff_session=")]
        # a name that does not exist backs off the same way (the throttle reveals nothing)
        for i in range(6):
            r = await login(client, "Nurse Nobody", f"wrong {i}")
        assert r.status == 429 and "Too many attempts" in await r.text()
        # other names are not affected
        other = await login(client, "Nurse Bea", "another long password")
        assert other.status == 303
        clock.advance(seconds=31)
        client.session.cookie_jar.clear()
        r = await login(client, NURSE_NAME, NURSE_PASSWORD)
        assert r.status == 303

    add_staff("Nurse Bea", None, "another long password", sessions=database.sessions)
    run(app, scenario)
    reasons = [a.detail["reason"] for a in audit_rows(database, "login_failed")]
    assert reasons.count("throttled (name)") == 3 and reasons.count("wrong name or password") == 10
    assert len(audit_rows(database, "login")) == 2


def test_logout_ends_the_session_and_is_audited(app, service, database, nurse):
    async def scenario(client):
        await login(client)
        token = await page_csrf(client)
        r = await client.post("/staff/logout", data={"csrf_token": token}, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/staff/login?out=1"
        assert any(c.startswith("hsg_staff_session=") and "Max-Age=0" in c for c in r.headers.getall("Set-Cookie"))
        r = await client.get(r.headers["Location"])
        assert "You have signed out" in await r.text()
        r = await client.get("/staff/", allow_redirects=False)
        assert r.status == 303

    run(app, scenario)
    assert not session_rows(database)
    assert [(a.actor_type, a.actor_id) for a in audit_rows(database, "logout")] == [("staff", str(nurse.id))]


# -- timeouts ---------------------------------------------------------------------------------------

def test_idle_timeout_deletes_the_session_and_sends_to_login(app, service, database, clock, nurse):
    async def scenario(client):
        await login(client)
        clock.advance(minutes=14)
        assert (await client.get("/staff/", allow_redirects=False)).status == 200     # activity: kept alive
        clock.advance(minutes=14)
        assert (await client.get("/staff/", allow_redirects=False)).status == 200
        clock.advance(minutes=10)
        # the page's own 30-second reload does not count as activity
        assert (await client.get("/staff/?auto=1", allow_redirects=False)).status == 200
        clock.advance(minutes=5, seconds=1)
        r = await client.get("/staff/?auto=1", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/staff/login?ended=1"
        assert await r.text() == ""
        r = await client.get(r.headers["Location"])
        assert "Your session ended" in await r.text()
        assert (await client.get("/staff/", allow_redirects=False)).status == 303

    run(app, scenario)
    assert not session_rows(database)
    expired = audit_rows(database, "session_expired")
    assert [(a.actor_id, a.detail["reason"]) for a in expired] == [(str(nurse.id), "idle timeout")]


def test_absolute_timeout(service, database, clock, nurse):
    app = mount(service, database, clock, absolute_timeout_hours=0.5)

    async def scenario(client):
        await login(client)
        for _ in range(3):
            clock.advance(minutes=10)
            assert (await client.get("/staff/", allow_redirects=False)).status == 200
        clock.advance(minutes=1)
        r = await client.get("/staff/", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/staff/login?ended=1"

    run(app, scenario)
    assert not session_rows(database)
    assert audit_rows(database, "session_expired")[0].detail["reason"] == "absolute timeout"


# -- CSRF -------------------------------------------------------------------------------------------

def test_posts_need_the_sessions_csrf_token_and_a_same_origin(app, service, database, nurse):
    ref = record(service).id
    ack = f"/staff/escalations/{ref}/acknowledge"

    async def scenario(client):
        await login(client)
        token = await page_csrf(client, f"/staff/escalations/{ref}")
        origin = str(client.make_url("/")).rstrip("/")
        refused = [
            ({}, {}),                                                    # no token
            ({"csrf_token": ""}, {}),
            ({"csrf_token": "A" * 43}, {}),                              # wrong token
            ({"csrf_token": token + "x"}, {}),
            ({"csrf_token": "é" * 43}, {}),
            ({"csrf_token": token}, {"Origin": "http://evil.example"}),   # right token, cross-site
            ({"csrf_token": token}, {"Origin": "null"}),
            ({"csrf_token": token}, {"Origin": origin.replace("127.0.0.1", "localhost")}),
            ({"csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
            ({"csrf_token": token}, {"Sec-Fetch-Site": "same-site"}),
        ]
        for data, headers in refused:
            r = await client.post(ack, data=data, headers=headers, allow_redirects=False)
            body = await r.text()
            assert r.status == 403, (data, headers)
            assert "could not be accepted" in body
        r = await client.post("/staff/logout", data={"csrf_token": "A" * 43}, allow_redirects=False)
        assert r.status == 403
        assert (await client.get("/staff/", allow_redirects=False)).status == 200   # still signed in
        # the login form has its own token
        r = await client.post("/staff/login", data={"name": NURSE_NAME, "password": NURSE_PASSWORD},
                              allow_redirects=False)
        assert r.status == 403
        # the right token from this origin works; so does the `Origin: null` browsers send on
        # same-origin posts from no-referrer pages, when fetch metadata says same-origin
        r = await client.post(ack, data={"csrf_token": token},
                              headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"}, allow_redirects=False)
        assert r.status == 303
        r = await client.post(ack, data={"csrf_token": token},
                              headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"}, allow_redirects=False)
        assert r.status == 303

    run(app, scenario)
    refusals = audit_rows(database, "csrf_refused")
    assert len(refusals) == 12
    assert all(a.actor_type == "staff" and a.actor_id == str(nurse.id) for a in refusals[:11])
    assert (refusals[11].actor_type, refusals[11].detail["path"]) == ("unknown", "/staff/login")
    reasons = {a.detail["reason"] for a in refusals}
    assert {"missing CSRF token", "wrong CSRF token", "cross-site Origin"} <= reasons
    assert esc_row(database, ref).status == "acknowledged"
    assert len(audit_rows(database, "acknowledged")) == 1
    assert len(audit_rows(database, "acknowledge_repeated")) == 1


# -- escaping ---------------------------------------------------------------------------------------

def test_patient_and_nurse_text_is_escaped_on_every_page(app, service, database, nurse):
    evil = '<script>alert(1)</script>'
    attr = '"><img src=x onerror=alert(1)>'
    ref = record(service, words=XSS_WORDS, summary=f"summary {evil}",
                 transcript=[{"who": "patient", "text": f"transcript {attr}", "at": "2026-01-01T10:00:00"},
                             {"who": f"bot{evil}", "text": "reply", "at": "garbage"}]).id
    closed = record(service, conv="conv-2", words=f"second {evil}").id
    service.resolve(closed, nurse.id, "dashboard", f"note {evil} {attr}")

    async def scenario(client):
        await login(client)
        pages = {}
        for path in ("/staff/", f"/staff/escalations/{ref}", f"/staff/escalations/{closed}"):
            r = await client.get(path)
            assert r.status == 200
            pages[path] = await r.text()
        return pages

    pages = run(app, scenario)
    for path, body in pages.items():
        assert "<script" not in body.lower().replace(OUR_SCRIPT, ""), path
        assert "<img" not in body.lower(), path
        assert "onerror=alert(1)>" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, path
    queue, detail = pages["/staff/"], pages[f"/staff/escalations/{ref}"]
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in queue          # the patient's words
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in detail
    assert "transcript &#34;&gt;&lt;img" in detail and "summary &lt;script&gt;" in detail
    assert "note &lt;script&gt;alert(1)&lt;/script&gt;" in queue           # recently resolved, nurse's note
    assert "note &lt;script&gt;" in pages[f"/staff/escalations/{closed}"]


# -- acknowledge and resolve ------------------------------------------------------------------------

def test_acknowledge_and_resolve_through_the_forms(app, service, database, nurse):
    ref = record(service).id

    async def scenario(client):
        await login(client)
        r = await client.get(f"/staff/escalations/{ref}")
        page = await r.text()
        assert "Acknowledge: I am handling this" in page and 'name="note"' in page
        token = csrf_of(page)

        r = await client.post(f"/staff/escalations/{ref}/acknowledge", data={"csrf_token": token},
                              allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == f"/staff/escalations/{ref}?done=acknowledged"
        page = await (await client.get(r.headers["Location"])).text()
        assert "Acknowledged: you are handling this escalation." in page
        assert f"by {NURSE_NAME}" in page and "Acknowledge: I am handling this" not in page
        assert esc_row(database, ref).status == "acknowledged"

        r = await client.post(f"/staff/escalations/{ref}/acknowledge", data={"csrf_token": token})
        assert "already been acknowledged" in await r.text()

        r = await client.post(f"/staff/escalations/{ref}/resolve", data={"csrf_token": token, "note": "   "})
        assert "Write a short note" in await r.text()
        assert esc_row(database, ref).status == "acknowledged"

        r = await client.post(f"/staff/escalations/{ref}/resolve",
                              data={"csrf_token": token, "note": "Phoned her, advised A&E"})
        page = await r.text()
        assert str(r.url).endswith("?done=resolved") and "Resolved, with your note." in page
        assert "Phoned her, advised A&amp;E" in page and 'name="note"' not in page

        queue = await (await client.get("/staff/")).text()
        assert "No open escalations." in queue
        assert ref in queue.split("Resolved in the last 24 hours")[1]          # in the resolved list

        r = await client.post("/staff/escalations/H-NOSUCH/resolve", data={"csrf_token": token, "note": "x"})
        assert r.status == 404

    run(app, scenario)
    esc = esc_row(database, ref)
    assert esc.status == "resolved" and esc.resolved_by == nurse.id and esc.acknowledged_by == nurse.id
    assert esc.resolution_note == "Phoned her, advised A&E"
    rows = audit_rows(database, escalation_id=ref)
    by_action = {}
    for a in rows:
        by_action.setdefault(a.action, []).append(a)
    for action in ("acknowledged", "resolved", "dashboard_acknowledge", "dashboard_resolve"):
        assert action in by_action, action
        assert all((a.actor_type, a.actor_id) == ("staff", str(nurse.id)) for a in by_action[action])
    assert by_action["acknowledged"][0].detail["via"] == "dashboard"
    assert by_action["resolved"][0].detail["note"] == "Phoned her, advised A&E"
    assert [a.detail["outcome"] for a in by_action["dashboard_acknowledge"]] == ["acknowledged",
                                                                                 "already_acknowledged"]
    assert [a.detail["outcome"] for a in by_action["dashboard_resolve"] if "outcome" in a.detail] == ["resolved"]
    assert "acknowledge_repeated" in by_action
    assert audit_rows(database, "resolve_refused")[0].detail["reason"] == "no such escalation"


# -- views audited, queue contents ----------------------------------------------------------------------

def test_views_are_audited(app, service, database, nurse):
    ref = record(service).id

    async def scenario(client):
        await login(client)
        await client.get("/staff/")
        await client.get("/staff/?auto=1")
        await client.get(f"/staff/escalations/{ref}")
        r = await client.get("/staff/escalations/H-NOSUCH")
        assert r.status == 404 and "No such escalation" in await r.text()
        page = await (await client.get(f"/staff/escalations/{ref}")).text()
        assert "Opened on the dashboard 1 time before now, last by Nurse Ada" in page

    run(app, scenario)
    queue_views = audit_rows(database, "dashboard_view_queue")
    assert [(a.actor_type, a.actor_id, a.detail["auto_refresh"]) for a in queue_views] == [
        ("staff", str(nurse.id), False), ("staff", str(nurse.id), True)]
    assert queue_views[0].detail["shown"] == [ref]
    views = audit_rows(database, "dashboard_view_escalation")
    assert [(a.escalation_id, a.detail["found"]) for a in views] == [(ref, True), (None, False), (ref, True)]
    assert views[1].detail["requested"] == "H-NOSUCH"


def test_queue_order_ages_days_and_alert_delivery(app, service, database, clock, nurse):
    old_urgent = record(service, conv="c-old", level="urgent", words="old urgent", days=2.5).id
    clock.advance(minutes=12)
    emergency = record(service, conv="c-em", level="emergency", words="fainted", days=1).id
    clock.advance(minutes=1)
    new_urgent = record(service, conv="c-new", level="urgent", words="new urgent", days=None).id
    acked = record(service, conv="c-ack", level="urgent", words="acked one").id
    service.acknowledge(acked, nurse.id, "telegram")
    with database.sessions() as s, s.begin():
        s.execute(update(OutboxMessage).where(OutboxMessage.escalation_id == old_urgent)
                  .values(status="dead", last_error="Bad Request: chat not found"))
        s.execute(update(OutboxMessage).where(OutboxMessage.escalation_id == emergency)
                  .values(status="sent", sent_at=clock()))
        # outbox rows take the real time; give new_urgent's alert the test clock's time (just queued)
        s.execute(update(OutboxMessage).where(OutboxMessage.escalation_id == new_urgent)
                  .values(created_at=clock()))
    clock.advance(seconds=30)

    async def scenario(client):
        await login(client)
        first = await (await client.get("/staff/")).text()
        clock.advance(minutes=3)                   # now new_urgent's alert has been pending too long
        later = await (await client.get("/staff/")).text()
        detail = await (await client.get(f"/staff/escalations/{old_urgent}")).text()
        return first, later, detail

    first, later, detail = run(app, scenario)
    order = [first.index(f">{ref}<") for ref in (emergency, old_urgent, new_urgent, acked)]
    assert order == sorted(order), "emergency first, then oldest first, acknowledged last"
    cards = {ref: card(first, ref) for ref in (emergency, old_urgent, new_urgent)}
    assert "EMERGENCY" in first and "level-emergency" in cards[emergency]
    assert "alert delivered" in cards[emergency] and "NOT" not in cards[emergency]
    assert "alert NOT delivered (delivery failed)" in cards[old_urgent] and "alert-bad" in cards[old_urgent]
    assert "alert being sent" in cards[new_urgent]
    assert "13 min" in cards[old_urgent] and "2.5 days" in cards[old_urgent]
    assert "1 day<" in cards[emergency] and "not known" in cards[new_urgent]
    assert "alert NOT delivered (still waiting to be sent)" in card(later, new_urgent)
    assert "card-undelivered" in card(later, new_urgent) and "card-undelivered" not in card(later, emergency)
    assert "1 EMERGENCY" in first and "3 Urgent" in first
    assert "Bad Request: chat not found" in detail and "⚠ dead" in detail


# -- headers -------------------------------------------------------------------------------------------

def test_security_headers_on_every_response_even_under_a_parent_with_its_own(service, database, clock, nurse):
    ref = record(service).id
    parent = mount(service, database, clock)

    async def parent_defaults(request, response):            # like bot.web.app's hook
        response.headers.setdefault("Content-Security-Policy", "default-src *")
        response.headers.setdefault("Cache-Control", "public, max-age=3600")
    parent.on_response_prepare.append(parent_defaults)

    async def scenario(client):
        responses = {}
        for path in ("/staff", "/staff/", "/staff/login", "/staff/static/dashboard.css", "/staff/nope"):
            responses[path] = await client.get(path, allow_redirects=False)
        await login(client)
        token = await page_csrf(client)
        for path in ("/staff/", f"/staff/escalations/{ref}", "/staff/escalations/H-NOSUCH", "/staff/nope"):
            responses["in " + path] = await client.get(path, allow_redirects=False)
        responses["csrf"] = await client.post("/staff/logout", data={}, allow_redirects=False)
        responses["ack"] = await client.post(f"/staff/escalations/{ref}/acknowledge", data={"csrf_token": token},
                                             allow_redirects=False)
        return responses

    for name, r in run(parent, scenario).items():
        h = r.headers
        assert h["Content-Security-Policy"] == CSP, name
        assert h["X-Frame-Options"] == "DENY", name
        assert h["X-Content-Type-Options"] == "nosniff", name
        assert h["Referrer-Policy"] == "no-referrer", name
        expected = "no-cache" if name.endswith("dashboard.css") else "no-store"
        assert h["Cache-Control"] == expected, name
        if r.status == 200 and name != "/staff/static/dashboard.css":
            assert h["Content-Type"].startswith("text/html"), name


OUR_SCRIPT = '<script src="/staff/static/alarm.js"></script>'     # the live alarm, from this site


def test_the_pages_have_no_scripts_but_ours_and_no_inline_styles(app, service, database, nurse):
    ref = record(service, words="I feel faint").id

    async def scenario(client):
        bodies = [await (await client.get("/staff/login")).text()]
        await login(client)
        for path in ("/staff/", f"/staff/escalations/{ref}"):
            bodies.append(await (await client.get(path)).text())
        return bodies

    for body in run(app, scenario):
        lower = body.lower().replace(OUR_SCRIPT, "")
        assert "<script" not in lower and "style=" not in lower and "<style" not in lower
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", lower)          # no event-handler attributes
        assert "<label for=" in lower or "<h1" in lower
        assert '<html lang="en">' in lower


def test_an_internal_error_gives_a_plain_page_without_details(app, service, database, nurse):
    async def scenario(client):
        await login(client)
        original = service.queue
        service.queue = lambda: (_ for _ in ()).throw(RuntimeError("secret internals H-SECRET1"))
        try:
            r = await client.get("/staff/")
            body = await r.text()
        finally:
            service.queue = original
        assert r.status == 500
        assert "H-SECRET1" not in body and "Traceback" not in body and "RuntimeError" not in body
        assert "Something went wrong" in body
        assert r.headers["Content-Security-Policy"] == CSP

    run(app, scenario)


def test_display_timezone(service, database, clock, nurse):
    clock.now = dt.datetime(2026, 7, 1, 12, 0)
    ref = record(service).id
    app = mount(service, database, clock, display_timezone="Europe/London")

    async def scenario(client):
        await login(client)
        return await (await client.get(f"/staff/escalations/{ref}")).text()

    page = run(app, scenario)
    assert "01 Jul 13:00 BST" in page and 'datetime="2026-07-01T12:00:00Z"' in page


@pytest.mark.parametrize("prefix", ["/staff/", "/nurses/"])
def test_urls_and_cookies_follow_the_mount_point(prefix, service, database, clock, nurse):
    from bot.dashboard import create_dashboard

    parent = web.Application()
    parent.add_subapp(prefix, create_dashboard(service, database.sessions, clock=clock))

    async def scenario(client):
        page = await client.get(prefix + "login")
        text = await page.text()
        assert f'action="{prefix}login"' in text and f'href="{prefix}static/dashboard.css"' in text
        r = await client.post(prefix + "login", data={"name": NURSE_NAME, "password": NURSE_PASSWORD,
                                                      "csrf_token": csrf_of(text)}, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == prefix
        cookie = [c for c in r.headers.getall("Set-Cookie") if c.startswith("hsg_staff_session=")][0]
        assert f"Path={prefix}" in cookie
        assert "Signed in as" in await (await client.get(prefix)).text()

    run(parent, scenario)


def test_database_work_never_runs_on_the_event_loop(database, clock, nurse):
    import threading

    from bot.escalation.service import Escalations

    opened_on = []
    recording = threading.Event()

    def sessions(*args, **kwargs):
        if recording.is_set():
            opened_on.append(threading.current_thread() is threading.main_thread())
        return database.sessions(*args, **kwargs)

    service = Escalations(sessions, clock=clock)
    ref = record(service).id

    class DB:               # what mount() needs: the session factory
        pass
    db = DB()
    db.sessions = sessions
    app = mount(service, db, clock)

    async def scenario(client):
        recording.set()
        await login(client)
        token = await page_csrf(client, f"/staff/escalations/{ref}")
        await client.post(f"/staff/escalations/{ref}/acknowledge", data={"csrf_token": token})
        await client.post(f"/staff/escalations/{ref}/resolve", data={"csrf_token": token, "note": "ok"})
        await client.get("/staff/")
        await client.post("/staff/logout", data={"csrf_token": token})

    run(app, scenario)                       # the event loop runs on the main thread
    assert len(opened_on) > 10 and not any(opened_on)
    assert esc_row(database, ref).status == "resolved"
