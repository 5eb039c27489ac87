"""A clinic without Telegram: a red flag over REST reaches the nurses anyway.

The live bot (Rasa + actions) records the escalation; the relay and the timers run as `make run`
starts them (`python -m bot relay`, `python -m bot timers`), with email as the push target and
the timers shortened; the dashboard is open in headless Chromium. Expected: the escalation shows
up on the open dashboard without a reload, with its alarm and the count in the tab title; an
email arrives at the local SMTP server; nobody acknowledges, so the alert is re-sent after the
configured time and the patient is told, in her own conversation, to call the clinic directly.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bot.store.db import Database
from bot.store.models import utcnow
from bot.escalation.service import Escalations
from bot.staff.roster import add_staff
from dashboard.conftest import NURSE_PASSWORD, ServerThread, mount
from support.smtp import SmtpServer
from support.browser import chromium

pytestmark = [pytest.mark.rasa, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]
NURSE = "Nurse Dee"


def wait_until(check, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def short_timers(tmp_path: Path) -> Path:
    doc = yaml.safe_load((ROOT / "clinic.yml").read_text())
    doc["escalation"].update(resend_after_minutes=0.1, tell_patient_after_minutes=0.2)   # 6 s and 12 s
    path = tmp_path / "clinic.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_red_flag_over_rest_alarms_the_dashboard_emails_re_alerts_and_tells_the_patient(live_bot, tmp_path):
    from playwright.sync_api import expect

    db = Database(os.environ["DATABASE_URL"])
    add_staff(NURSE, None, NURSE_PASSWORD, sessions=db.sessions)
    smtp = SmtpServer(live_bot.smtp_port).start()       # the live bot's configured mail server
    env = {**live_bot.env, "CLINIC_SETTINGS": str(short_timers(tmp_path)), "RASA_URL": live_bot.rasa_url,
           "HSG_RELAY_BACKOFF_BASE": "0.5"}
    for var in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_STAFF_CHAT_ID"):
        env.pop(var, None)
    workers = [subprocess.Popen([sys.executable, "-m", "bot", cmd], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for cmd in ("relay", "timers")]
    server = ServerThread()
    try:
        port = server.serve(mount(Escalations(db.sessions), db, utcnow, live_every=0.5))
        with chromium() as browser:
            page = browser.new_context().new_page()
            page.set_default_timeout(15_000)
            loads = []
            page.on("load", lambda _p: loads.append(1))
            page.goto(f"http://127.0.0.1:{port}/staff/login")
            page.get_by_label("Your name").fill(NURSE)
            page.get_by_label("Password").fill(NURSE_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Open escalations")).to_be_visible()
            page.wait_for_function("document.body.getAttribute('data-alarm') !== null")
            loads_before = len(loads)

            sender = live_bot.new_sender()
            sent_at = time.time()
            answer = live_bot.send(sender, "I've got a temperature of 39.2 and I keep shaking with chills")
            ref = live_bot.triage(answer)["escalation_id"]
            assert ref and "alerted the clinic's nurses" in answer[0]["text"]

            alarm = page.locator("#alarm")
            expect(alarm).to_be_visible()
            expect(alarm).to_contain_text(ref)
            expect(page.locator("body")).to_have_attribute("data-alarm", "sounding")
            expect(page.get_by_role("link", name=ref)).to_be_visible()       # the queue, refreshed in place
            shown_after = time.time() - sent_at
            assert page.title().startswith("(") and len(loads) == loads_before     # no reload
            page.screenshot(path=str(tmp_path / "alarm.png"))
            page.get_by_role("button", name="Silence alarm").click()
            expect(alarm).to_be_hidden()
            expect(page.locator("body")).to_have_attribute("data-alarm", "silent")

        first_mail = wait_until(lambda: [m for m in smtp.inbox.messages if ref in m["Subject"]], 30, "the alert email")
        assert "New" in first_mail[0]["Subject"] and "39.2" not in first_mail[0].get_content()
        wait_until(lambda: [m for m in smtp.inbox.messages
                            if ref in m["Subject"] and "Not yet acknowledged" in m["Subject"]], 40, "the re-alert email")

        def told():
            events = live_bot.api(f"/conversations/{sender}/tracker")["events"]
            return [e for e in events if e.get("event") == "bot" and "haven't picked up my alert yet" in (e.get("text") or "")]
        [notice] = wait_until(told, 60, "the 'call the clinic directly' notice")
        assert "020 7946 0321" in notice["text"]
        print(f"\nwithout Telegram: on the dashboard with its alarm {shown_after:.1f} s after the message; "
              f"emails: {[str(m['Subject']) for m in smtp.inbox.messages if ref in m['Subject']]}")
    finally:
        server.close()
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=20)
        smtp.stop()
