"""Webhook mode: the secret header, store-before-200, deduplication, and restart after a crash."""
import json
import time
import urllib.error
import urllib.request

import pytest
from support.telegram_emulator import TelegramEmulator
from tg_support import CLINIC_PHONE, WEBHOOK_SECRET, Harness, eventually, give_consent, say, wait_messages

from bot.channels.telegram.webhook import WebhookConfig, parse_listen
from bot.store import telegram_inbox as inbox
from bot.store.db import Database


@pytest.fixture(scope="module")
def emu():
    with TelegramEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def hook(emu, db):
    with Harness(emu, db.sessions, mode="webhook") as harness:
        yield harness


def post(url, body, secret=None):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def update(update_id, chat, text):
    message = {"message_id": update_id % 100000, "date": int(time.time()), "text": text,
               "chat": {"id": chat, "type": "private", "first_name": "P"},
               "from": {"id": chat, "is_bot": False, "first_name": "P"}}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id, "message": message}


def test_set_webhook_with_the_secret_and_updates_arrive_through_it(hook, emu, db, chat):
    assert emu.webhook["url"] == hook.webhook_url
    assert emu.webhook["secret_token"] == WEBHOOK_SECRET
    assert set(emu.webhook["allowed_updates"]) >= {"message", "edited_message", "callback_query"}
    give_consent(emu, chat)                       # /start and the button press, through the webhook
    (answer,) = say(emu, chat, "hello")
    assert answer["text"] == "You said: hello"
    assert all(d.status == 200 and d.secret_token == WEBHOOK_SECRET for d in emu.webhook_deliveries)
    # processed updates keep no text: only what deduplication and /forget need
    last = emu.webhook_deliveries[-1].update_id
    eventually(lambda: inbox.update_state(last, db.sessions)["processed_at"] is not None, what="processed")
    assert inbox.update_state(last, db.sessions)["payload"] == {"update_id": last, "chat_id": str(chat)}


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", WEBHOOK_SECRET + "x", WEBHOOK_SECRET[:-1]])
def test_without_the_right_secret_403_and_nothing_stored(hook, db, chat, secret):
    before = inbox.stored_update_ids(sessions=db.sessions)
    assert post(hook.webhook_url, update(5_000_001, chat, "let me in"), secret) == 403
    assert inbox.stored_update_ids(sessions=db.sessions) == before
    assert inbox.update_state(5_000_001, db.sessions) is None


def test_a_body_that_is_not_an_update_is_refused(hook, db):
    assert post(hook.webhook_url, {"hello": 1}, WEBHOOK_SECRET) == 400
    assert post(hook.webhook_url, {"update_id": "7"}, WEBHOOK_SECRET) == 400


def test_the_same_update_delivered_twice_is_processed_once(hook, emu, db, chat):
    u = update(6_000_000 + chat % 1000, chat, "/help")
    assert post(hook.webhook_url, u, WEBHOOK_SECRET) == 200
    assert post(hook.webhook_url, u, WEBHOOK_SECRET) == 200
    (answer,) = wait_messages(emu, chat, 1)
    assert "/forget" in answer["text"]
    time.sleep(1.0)                                   # a second answer would have come by now
    assert len(emu.sent_messages(chat)) == 1
    assert inbox.stored_update_ids(chat, db.sessions) == [u["update_id"]]


def test_an_update_stored_but_not_processed_is_processed_after_a_restart(tmp_path, chat):
    # The process stored the update, answered 200, and died before processing it.
    db = Database(f"sqlite:///{tmp_path / 'crashed.db'}")
    u = update(7_000_000 + chat % 1000, chat, "/start")
    assert inbox.store_update(u["update_id"], u, db.sessions)
    with TelegramEmulator() as emu2:
        with Harness(emu2, db.sessions, mode="webhook"):
            intro, request = wait_messages(emu2, chat, 2)
            assert "aftercare assistant" in intro["text"] and "consent:yes" in json.dumps(request["reply_markup"])
            eventually(lambda: inbox.update_state(u["update_id"], db.sessions)["processed_at"] is not None,
                       what="marked processed")
        assert len(emu2.sent_messages(chat)) == 2
    db.dispose()


def test_a_red_flag_before_consent_through_the_webhook(hook, emu, chat):
    emu.push_message(chat, "I'm bleeding heavily, soaking a pad every hour")
    first = wait_messages(emu, chat, 1)[0]
    assert CLINIC_PHONE in first["text"] or "999" in first["text"]


def test_webhook_settings():
    env = {"TELEGRAM_WEBHOOK_URL": "https://bot.clinic.example/telegram/hook", "TELEGRAM_WEBHOOK_SECRET": "s3cr3t_-"}
    cfg = WebhookConfig.from_env(env)
    assert (cfg.host, cfg.port, cfg.path) == ("127.0.0.1", 8443, "/telegram/hook")
    assert WebhookConfig.from_env({**env, "TELEGRAM_WEBHOOK_LISTEN": "0.0.0.0:9000"}).port == 9000
    assert parse_listen("[::1]:8443") == ("::1", 8443)
    for bad in ({**env, "TELEGRAM_WEBHOOK_SECRET": ""}, {**env, "TELEGRAM_WEBHOOK_SECRET": "has space"},
                {**env, "TELEGRAM_WEBHOOK_URL": "http://bot.clinic.example/hook"},
                {"TELEGRAM_WEBHOOK_SECRET": "x"}, {**env, "TELEGRAM_WEBHOOK_LISTEN": "8443"}):
        with pytest.raises(ValueError):
            WebhookConfig.from_env(bad)


def test_cli_webhook_mode_requires_the_secret(monkeypatch, capsys):
    import bot.__main__ as cli
    monkeypatch.setattr(cli, "_without_tensorflow", lambda: None)     # keep this process's imports as they are
    main = cli.main
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://bot.clinic.example/hook")
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET", raising=False)
    assert main(["telegram", "--webhook"]) == 2
    assert "TELEGRAM_WEBHOOK_SECRET" in capsys.readouterr().err


def test_python_m_bot_telegram_webhook(tmp_path):
    """The command: setWebhook with the secret, updates through it, stops cleanly on SIGTERM."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tg_support import free_port

    root = Path(__file__).resolve().parents[2]
    port = free_port()
    with TelegramEmulator() as emu2:
        env = {**os.environ, "PYTHONPATH": str(root), "TELEGRAM_BOT_TOKEN": emu2.token,
               "TELEGRAM_API_BASE_URL": emu2.base_url, "HSG_DATA_DIR": str(tmp_path),
               "DATABASE_URL": f"sqlite:///{tmp_path / 'hook.db'}",
               "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/tg/hook",
               "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET, "TELEGRAM_WEBHOOK_LISTEN": f"127.0.0.1:{port}"}
        env.pop("TELEGRAM_ID_SECRET", None)
        env.pop("TELEGRAM_STAFF_CHAT_ID", None)
        proc = subprocess.Popen([sys.executable, "-m", "bot", "telegram", "--webhook",
                                 "--rasa-url", f"http://127.0.0.1:{free_port()}"],
                                cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            emu2.wait_for("setWebhook", timeout=60)
            assert emu2.webhook["secret_token"] == WEBHOOK_SECRET
            emu2.push_message(424242, "/start")
            intro, _ = wait_messages(emu2, 424242, 2, timeout=20)
            assert "aftercare assistant" in intro["text"]
            secret_file = tmp_path / "telegram_id_secret"
            assert secret_file.exists() and (secret_file.stat().st_mode & 0o777) == 0o600
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out[-2000:]
        assert emu2.token.split(":")[1] not in out            # the token never reaches the logs
