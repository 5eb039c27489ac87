"""The chat page in Debian's chromium (Playwright), against a fake Rasa socket.io server."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from .conftest import wait_for

pytestmark = pytest.mark.browser

XSS = 'Hi <script>alert(1)</script> and <img src=x onerror="alert(2)"> there'


class Watch:
    """What a page does that it should not: requests to other hosts, console errors, dialogs."""

    def __init__(self, page, hosts):
        self.hosts = hosts
        self.urls, self.errors, self.dialogs = [], [], []
        self.accept_dialogs = False
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("websocket", lambda ws: self.urls.append(ws.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog):
        self.dialogs.append((dialog.type, dialog.message))
        dialog.accept() if self.accept_dialogs else dialog.dismiss()

    def foreign(self):
        out = []
        for url in self.urls:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob", "about"):
                continue
            if parts.netloc not in self.hosts:
                out.append(url)
        return out


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 360, "height": 640})
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


def test_conversation_cards_banner_reload_and_layout(servers, context, tmp_path):
    from playwright.sync_api import expect

    fake = servers.fake
    page = context.new_page()
    watch = Watch(page, servers.hosts)
    page.goto(servers.url)

    status = page.locator("#status")
    expect(status).to_have_text("Connected")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(page.locator("#log")).to_have_attribute("role", "log")
    expect(page.locator("#notice")).to_contain_text("Not for emergencies")
    expect(page.locator('#notice a[href="tel:999"]')).to_have_text("999")
    wait_for(lambda: len(servers.chat.confirmed) == 1, what="session_request")
    session_id = servers.chat.confirmed[0]                                # issued by the server
    assert session_id.startswith("web-") and len(session_id) == 36
    token = page.evaluate("Object.values(localStorage).join()")
    assert session_id[4:] + "." in token                                  # the signed id, kept by the page

    # An urgent answer: typing indicator, then the text with tel: links and the urgent card on it.
    box = page.get_by_label("Your message")
    box.click()
    box.type("I have a temperature of 38.4")
    box.press("Enter")
    expect(page.locator("#typing")).to_be_visible()
    expect(page.locator(".msg.user .bubble").last).to_have_text("You: I have a temperature of 38.4")
    urgent_card = page.locator(".card.level-urgent")
    expect(urgent_card).to_be_visible()
    expect(urgent_card.locator(".card-level")).to_have_text("Urgent")
    expect(urgent_card).to_contain_text("Fever or feeling feverish")
    expect(urgent_card).not_to_contain_text("Spotting")                   # negated finding left out
    expect(urgent_card).to_contain_text("ESC-20261126-0042")
    expect(page.locator("#typing")).to_be_hidden()
    urgent_text = urgent_card.locator("xpath=..")                         # the card sits on its text
    expect(urgent_text.locator(".bubble")).to_contain_text("Please call the clinic now")
    expect(urgent_text.locator('.bubble a[href="tel:02079460321"]')).to_have_text("020 7946 0321")
    expect(urgent_text.locator('.bubble a[href="tel:02079460999"]')).to_have_text("020 7946 0999")
    assert box.input_value() == ""
    assert fake.messages[-1] == (session_id, "I have a temperature of 38.4")

    # Quick replies: the payload goes out, the title is shown, the buttons are then disabled.
    yes = page.get_by_role("button", name="Yes", exact=True)
    no = page.get_by_role("button", name="No", exact=True)
    expect(yes).to_be_enabled()
    yes.click()
    wait_for(lambda: fake.messages[-1] == (session_id, "yes, the painkillers help"), what="quick reply")
    expect(yes).to_be_disabled()
    expect(no).to_be_disabled()
    expect(page.locator(".msg.user .bubble").last).to_have_text("You: Yes")
    expect(page.locator(".card.level-info").last.locator(".card-level")).to_have_text("Information")

    # Shift+Enter is a new line, not a send.
    box.click()
    sent_before = len(fake.messages)
    box.type("line one")
    box.press("Shift+Enter")
    box.type("line two")
    assert box.input_value() == "line one\nline two"
    page.wait_for_timeout(300)
    assert len(fake.messages) == sent_before
    box.fill("")

    # Emergency: the card in words and the banner at the top with a tel: link, until dismissed.
    box.type("my lips are swelling up")
    box.press("Enter")
    emergency_card = page.locator(".card.level-emergency")
    expect(emergency_card.locator(".card-level")).to_have_text("Emergency")
    banner = page.get_by_role("alert")
    call = banner.locator('a[href="tel:999"]')
    expect(call).to_have_text("Call 999 now")
    expect(call).to_be_in_viewport()
    expect(page.locator(".msg.bot .bubble").last).to_contain_text("tell the clinic afterwards")

    # Phone-sized layout: no horizontal scrolling, the message box in view.
    shot = tmp_path / "chat-360x640.png"
    page.screenshot(path=str(shot))
    assert shot.exists() and shot.stat().st_size > 1000
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    expect(box).to_be_in_viewport()
    expect(page.locator("#send")).to_be_in_viewport()

    # Reload: the transcript, the cards and the banner come back; the same Rasa session goes on.
    transcript = page.locator("#log").inner_text()
    page.reload()
    expect(status).to_have_text("Connected")
    expect(page.locator(".msg.user .bubble", has_text="my lips are swelling up")).to_be_visible()
    expect(page.locator(".card.level-urgent .card-level")).to_have_text("Urgent")
    expect(page.locator(".card.level-emergency .card-level")).to_have_text("Emergency")
    expect(page.get_by_role("button", name="Yes", exact=True)).to_be_disabled()
    expect(call).to_have_text("Call 999 now")
    assert page.locator("#log").inner_text() == transcript
    wait_for(lambda: len(servers.chat.confirmed) == 2, what="session_request after reload")
    assert servers.chat.confirmed[1] == session_id
    box.type("still feeling hot")
    box.press("Enter")
    wait_for(lambda: fake.messages[-1] == (session_id, "still feeling hot"), what="message after reload")
    assert {sid for sid, _ in fake.messages} == {session_id}

    # Dismissing the banner sticks across a reload.
    banner.get_by_role("button", name="Dismiss the emergency message").click()
    expect(call).to_have_count(0)
    expect(box).to_be_focused()
    page.reload()
    expect(status).to_have_text("Connected")
    expect(page.locator(".card.level-emergency")).to_have_count(1)
    expect(page.locator("#emergency-banner a")).to_have_count(0)

    # Start over (after a confirm dialog): the transcript goes, a new session id is requested.
    assert watch.dialogs == []
    watch.accept_dialogs = True
    page.get_by_role("button", name="Start over").click()
    expect(page.locator(".msg.user")).to_have_count(0)
    expect(page.locator(".card")).to_have_count(0)
    wait_for(lambda: servers.chat.confirmed[-1] != session_id, what="a new session")
    expect(status).to_have_text("Connected")
    assert [kind for kind, _ in watch.dialogs] == ["confirm"]
    new_id = servers.chat.confirmed[-1]
    assert new_id.startswith("web-") and page.evaluate("localStorage.length") == 1
    wait_for(lambda: new_id[4:] in page.evaluate("Object.values(localStorage).join()"), what="the new id stored")

    assert watch.foreign() == [], watch.foreign()
    # the page's socket is the web app's own: it never reaches Rasa's port
    assert any(url.startswith(f"ws://127.0.0.1:{servers.web_port}/socket.io/") for url in watch.urls)
    assert not any(f":{servers.rasa_port}/" in url for url in watch.urls)
    assert watch.errors == [], watch.errors


def test_markup_in_messages_is_shown_as_text(servers, context):
    from playwright.sync_api import expect

    page = context.new_page()
    watch = Watch(page, servers.hosts)
    page.goto(servers.url)
    expect(page.locator("#status")).to_have_text("Connected")
    box = page.get_by_label("Your message")
    box.fill(XSS)
    box.press("Enter")
    expect(page.locator(".msg.user .bubble").last).to_have_text("You: " + XSS)
    bot = page.locator(".msg.bot .bubble").last
    expect(bot).to_have_text("Assistant: You said: " + XSS)
    card = page.locator(".card.level-info").last
    expect(card).to_contain_text("<img src=x onerror=alert(3)> name")
    card.get_by_text("Why this level").click()
    expect(card).to_contain_text("<script>alert(4)</script>")
    page.wait_for_timeout(500)
    log = page.locator("#log")
    expect(log.locator("img")).to_have_count(0)
    expect(log.locator("script")).to_have_count(0)
    expect(log.locator("b")).to_have_count(0)
    assert watch.dialogs == []
    assert not any(urlsplit(u).path == "/x" for u in watch.urls)      # no <img src=x> was loaded
    assert watch.foreign() == []
    assert watch.errors == [], watch.errors
    # a fresh browser context: its own session
    assert servers.fake.messages[-1][1] == XSS


def test_keyboard_only(servers, context):
    """Tab from the top reaches the message box; the focus is visible; Enter sends."""
    from playwright.sync_api import expect

    page = context.new_page()
    page.emulate_media(reduced_motion="reduce")
    page.goto(servers.url)
    expect(page.locator("#status")).to_have_text("Connected")
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")                                       # skip link -> message box
    box = page.locator("#message")
    expect(box).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.type("I have a temperature of 38.4")
    page.keyboard.press("Enter")
    expect(page.locator(".card.level-urgent")).to_be_visible()
    # tab to the first quick reply and answer with the keyboard
    page.locator(".quick-reply").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".quick-reply").first).to_be_disabled()
    assert page.evaluate("getComputedStyle(document.querySelector('.dots span')).animationName") == "none"


def test_connection_drop_shows_reconnecting_and_queues_the_message(servers, context):
    """While the chat server is unreachable the page says so and keeps the message; after reconnecting it
    asks for the same session first, then sends the message."""
    from playwright.sync_api import expect

    fake = servers.fake
    page = context.new_page()
    watch = Watch(page, servers.hosts)
    page.goto(servers.url)
    status = page.locator("#status")
    expect(status).to_have_text("Connected")
    session_id = servers.chat.confirmed[-1]
    requests_before = servers.chat.confirmed.count(session_id)

    try:
        servers.call(servers.outage.go_down())
        expect(status).to_contain_text("Reconnecting")
        box = page.get_by_label("Your message")
        box.fill("I have a temperature of 38.4 while offline")
        box.press("Enter")
        expect(page.locator(".msg.user .bubble").last).to_contain_text("while offline")
        expect(status).to_contain_text("Your message will be sent when connected")
        expect(page.locator("#typing")).to_be_visible()
        page.wait_for_timeout(1500)
        assert all("while offline" not in m for _, m in fake.messages)
    finally:
        servers.outage.down = False
    expect(status).to_have_text("Connected", timeout=15_000)
    wait_for(lambda: fake.messages[-1] == (session_id, "I have a temperature of 38.4 while offline"),
             what="the queued message")
    assert servers.chat.confirmed.count(session_id) == requests_before + 1
    expect(page.locator(".card.level-urgent")).to_be_visible()
    expect(page.locator("#typing")).to_be_hidden()
    assert watch.foreign() == []
    # the refused reconnection attempts are network errors in the console, nothing else
    assert all("socket.io" in e or "503" in e or "WebSocket" in e for e in watch.errors), watch.errors
