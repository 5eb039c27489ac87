"""The dashboard in Debian's chromium (Playwright): sign in, read, acknowledge, resolve, sign out."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from bot.escalation.service import Escalations
from bot.staff.roster import add_staff

from .conftest import NURSE_NAME, NURSE_PASSWORD, XSS_WORDS, Clock, ServerThread, mount, record

pytestmark = pytest.mark.browser


def test_a_nurse_signs_in_acknowledges_and_resolves(sqlite_database, browser, tmp_path):
    from playwright.sync_api import expect

    db = sqlite_database
    clock = Clock()
    service = Escalations(db.sessions, clock=clock)
    add_staff(NURSE_NAME, None, NURSE_PASSWORD, sessions=db.sessions)
    ref = record(service, words=XSS_WORDS).id
    server = ServerThread()
    try:
        port = server.serve(mount(service, db, clock))
        base = f"http://127.0.0.1:{port}"
        context = browser.new_context(viewport={"width": 1024, "height": 768})   # a tablet
        context.set_default_timeout(10_000)
        page = context.new_page()
        urls, errors, dialogs = [], [], []
        page.on("request", lambda r: urls.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

        # no session: the queue sends to the sign-in page
        page.goto(f"{base}/staff/")
        assert urlsplit(page.url).path == "/staff/login"
        expect(page.get_by_role("heading", name="Nurses' sign in")).to_be_visible()
        page.get_by_label("Your name").fill(NURSE_NAME)
        page.get_by_label("Password").fill(NURSE_PASSWORD)
        page.get_by_role("button", name="Sign in").click()

        # the queue, with the escalation; the patient's words are shown as text
        expect(page.get_by_role("heading", name="Open escalations")).to_be_visible()
        expect(page.get_by_text(f"Signed in as {NURSE_NAME}")).to_be_visible()
        card = page.locator("li.card", has=page.get_by_role("link", name=ref))
        expect(card).to_contain_text("Urgent")
        expect(card).to_contain_text("3 days")
        expect(card.locator("blockquote")).to_contain_text("<script>alert(1)</script>")
        expect(card.locator("blockquote")).to_contain_text('"><img src=x onerror=alert(1)>')
        badge = card.locator(".level-urgent").first
        assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 194, 77)"  # CSS loaded

        # the detail page
        page.get_by_role("link", name=ref).click()
        assert urlsplit(page.url).path == f"/staff/escalations/{ref}"
        expect(page.get_by_role("heading", level=1)).to_contain_text(ref)
        expect(page.locator("#status")).to_have_text("Open: not yet acknowledged")
        words = page.locator(".words-list blockquote").first
        expect(words).to_have_text(XSS_WORDS)
        assert page.evaluate("[...document.scripts].map(s => new URL(s.src).pathname)") == [
            "/staff/static/alarm.js"]                                 # our one script, no inline code
        assert page.evaluate("document.querySelectorAll('main img').length") == 0
        expect(page.get_by_text("Heavy bleeding", exact=True)).to_be_visible()

        page.get_by_role("button", name="Acknowledge: I am handling this").click()
        expect(page.get_by_role("status").filter(has_text="Acknowledged: you are handling")).to_be_visible()
        expect(page.locator("#status")).to_have_text("Acknowledged")
        expect(page.get_by_role("button", name="Acknowledge: I am handling this")).to_have_count(0)

        page.get_by_label("What was done (required to resolve)").fill("Phoned her, advised A&E <b>now</b>")
        page.get_by_role("button", name="Resolve").click()
        expect(page.get_by_text("Resolved, with your note.")).to_be_visible()
        expect(page.locator("#status")).to_have_text("Resolved")
        expect(page.get_by_text("Phoned her, advised A&E <b>now</b>", exact=True)).to_be_visible()
        expect(page.locator(".timeline")).to_contain_text("Acknowledged")
        expect(page.locator(".timeline")).to_contain_text("Resolved")
        page.screenshot(path=str(tmp_path / "dashboard-resolved.png"), full_page=True)

        # keyboard: the skip link is the first stop and is visible when focused
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()

        page.get_by_role("link", name="← Back to the queue").click()
        expect(page.get_by_text("No open escalations.")).to_be_visible()
        expect(page.locator(".resolved")).to_contain_text(ref)
        page.screenshot(path=str(tmp_path / "dashboard-queue.png"), full_page=True)

        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_text("You have signed out.")).to_be_visible()
        page.goto(f"{base}/staff/escalations/{ref}")
        assert urlsplit(page.url).path == "/staff/login"
        expect(page.locator("body")).not_to_contain_text("bleeding")
        context.close()
    finally:
        server.close()

    assert (tmp_path / "dashboard-resolved.png").stat().st_size > 10_000
    assert dialogs == [], dialogs
    assert errors == [], errors
    foreign = [u for u in urls if urlsplit(u).netloc != f"127.0.0.1:{port}"]
    assert foreign == [], foreign
    esc = service.get(ref)
    assert esc.status == "resolved" and esc.resolution_note == "Phoned her, advised A&E <b>now</b>"
