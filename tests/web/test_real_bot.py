"""The chat page against the real trained bot: the web app's socket.io, its gateway, Rasa's REST
channel on loopback and the action server."""
import dataclasses

import pytest

from bot import settings as bot_settings
from bot.web.app import CHAT_KEY, create_app

from .conftest import ServerThread, _free_port, _serve_on

pytestmark = [pytest.mark.rasa, pytest.mark.browser]


def test_page_talks_to_the_real_bot_and_shows_the_triage_card(live_bot, browser, tmp_path, monkeypatch):
    from playwright.sync_api import expect

    monkeypatch.setenv("RASA_ENDPOINTS", str(live_bot.tmp / "endpoints.yml"))   # the bot's tracker store
    thread = ServerThread()
    try:
        port = _free_port()
        settings = dataclasses.replace(bot_settings.load(), data_dir=live_bot.tmp / "var")   # the bot's secrets
        app = create_app(live_bot.rasa_url, settings, origins=[f"http://127.0.0.1:{port}"])
        thread.call(_serve_on(thread, app, port))
        page = browser.new_context(viewport={"width": 360, "height": 640}).new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"http://127.0.0.1:{port}/")
        expect(page.locator("#status")).to_have_text("Connected", timeout=20_000)
        box = page.get_by_label("Your message")
        box.fill("I've been shivering and my temperature is 38.7")
        box.press("Enter")
        card = page.locator(".card.level-urgent")
        expect(card).to_be_visible(timeout=30_000)
        expect(card.locator(".card-level")).to_have_text("Urgent")
        expect(page.locator(".msg.bot .bubble", has_text="Please call the clinic now").first).to_be_visible()
        box.fill("my lips are swelling up")
        box.press("Enter")
        expect(page.get_by_role("alert")).to_contain_text("999", timeout=30_000)
        page.screenshot(path=str(tmp_path / "real-bot.png"))
        conversation = app[CHAT_KEY].confirmed[-1]
        assert [e for e in live_bot.api(f"/conversations/{conversation}/tracker")["events"] if e["event"] == "user"]

        # "Delete my conversation": Rasa's copy and this device's go; the page says what is kept
        page.once("dialog", lambda d: d.accept())
        page.get_by_role("button", name="Delete my conversation").click()
        expect(page.locator(".msg", has_text="I have deleted our conversation")).to_be_visible(timeout=30_000)
        expect(page.locator(".msg", has_text="What is kept")).to_be_visible()
        expect(page.locator(".msg.user")).to_have_count(0)
        assert not [e for e in live_bot.api(f"/conversations/{conversation}/tracker?include_events=ALL")["events"]
                    if e["event"] in ("user", "bot")]
        assert conversation[4:] not in page.evaluate("Object.values(localStorage).join()")
        assert not errors, errors
    finally:
        thread.close()
