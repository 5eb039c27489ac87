"""Proves the Telegram emulator against the real python-telegram-bot 22.8 client.

pytest-asyncio is not installed: every test drives its coroutine with asyncio.run().
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import threading
import time
import warnings

import httpx
import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MenuButtonCommands,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import AIORateLimiter, ApplicationBuilder, CommandHandler, ExtBot
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from .telegram_emulator import TelegramEmulator, UploadedFile, WaitTimeout


@pytest.fixture
def emu():
    with TelegramEmulator() as emulator:
        yield emulator


def make_bot(emu: TelegramEmulator) -> Bot:
    return Bot(emu.token, base_url=emu.base_url, base_file_url=emu.base_file_url)


def retry_after_seconds(exc: RetryAfter) -> float:
    # PTB 22.2+ warns that retry_after will become a timedelta; accept both forms.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else value


# --------------------------------------------------------------------------- 1. getMe


def test_get_me_and_token_shape(emu):
    async def main():
        async with make_bot(emu) as bot:  # initialize() calls getMe once
            return await bot.get_me()

    me = asyncio.run(main())
    assert me.id == emu.bot_id == 123456
    assert me.is_bot is True
    assert me.username == "emulated_test_bot"
    assert [c.method for c in emu.calls] == ["getMe", "getMe"]
    bot_id, secret = emu.token.split(":")
    assert bot_id == "123456" and secret.startswith("TEST-EMULATOR-")
    assert emu.base_url == f"http://127.0.0.1:{emu.port}/bot"
    assert emu.api_url == f"http://127.0.0.1:{emu.port}/bot{emu.token}"


def test_wrong_token_is_unauthorized(emu):
    async def main():
        async with Bot("999:not-the-emulator-token", base_url=emu.base_url):
            pass

    with pytest.raises(InvalidToken):
        asyncio.run(main())
    assert emu.calls == []  # rejected before being recorded as a call


# --------------------------------------------------------------------------- 2. send & edit


def test_send_message_with_keyboards_and_edit(emu):
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("Yes", callback_data="yes"), InlineKeyboardButton("No", callback_data="no")],
            [InlineKeyboardButton("Docs", url="https://example.org/docs")],
        ]
    )

    async def main():
        async with make_bot(emu) as bot:
            first = await bot.send_message(chat_id=555, text="Proceed?", reply_markup=keyboard)
            second = await bot.send_message(
                chat_id=555,
                text="Pick one",
                reply_markup=ReplyKeyboardMarkup([["A", "B"]], one_time_keyboard=True),
                reply_to_message_id=first.message_id,
                disable_web_page_preview=True,
            )
            edited = await bot.edit_message_text(
                chat_id=555,
                message_id=first.message_id,
                text="Proceeding",
                reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Undo", callback_data="undo")]]),
            )
            with pytest.raises(BadRequest, match="(?i)message is not modified"):
                await bot.edit_message_text(
                    chat_id=555,
                    message_id=first.message_id,
                    text="Proceeding",
                    reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Undo", callback_data="undo")]]),
                )
            no_buttons = await bot.edit_message_reply_markup(chat_id=555, message_id=first.message_id)
            return first, second, edited, no_buttons

    first, second, edited, no_buttons = asyncio.run(main())

    assert (first.message_id, second.message_id) == (1, 2)
    assert first.chat.id == 555 and first.chat.type == "private"
    assert first.from_user.id == emu.bot_id
    assert first.text == "Proceed?"
    assert first.reply_markup.inline_keyboard[0][0].callback_data == "yes"
    assert first.reply_markup.inline_keyboard[1][0].url == "https://example.org/docs"
    assert first.edit_date is None
    # reply keyboards are not echoed in Message.reply_markup (which is inline-only)
    assert second.reply_markup is None
    assert second.reply_to_message.message_id == 1

    # what the bot sent, as recorded
    sent = emu.calls_to("sendMessage")
    assert sent[0].params["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "yes"}, {"text": "No", "callback_data": "no"}],
            [{"text": "Docs", "url": "https://example.org/docs"}],
        ]
    }
    assert sent[1].params["reply_markup"]["keyboard"] == [[{"text": "A"}, {"text": "B"}]]
    assert sent[1].params["reply_markup"]["one_time_keyboard"] is True
    assert sent[1].params["reply_parameters"]["message_id"] == 1  # PTB 22 converts reply_to_message_id
    assert sent[1].params["link_preview_options"] == {"is_disabled": True}
    assert [m["text"] for m in emu.sent_messages(555)] == ["Proceed?", "Pick one"]
    assert emu.sent_messages(555)[0]["reply_markup"]["inline_keyboard"][0][1]["callback_data"] == "no"
    assert emu.sent_messages(chat_id=1) == []

    # the edit
    assert edited.message_id == 1 and edited.text == "Proceeding"
    assert isinstance(edited.edit_date, dtm.datetime)
    assert edited.reply_markup.inline_keyboard[0][0].callback_data == "undo"
    assert no_buttons.reply_markup is None
    assert [m["text"] for m in emu.edited_messages] == ["Proceeding", "Proceeding"]
    assert emu.get_message(555, 1)["text"] == "Proceeding"
    assert "reply_markup" not in emu.get_message(555, 1)


def test_send_message_validation_errors(emu):
    async def main():
        async with make_bot(emu) as bot:
            with pytest.raises(BadRequest, match=r"(?i)character '\.' is reserved"):
                await bot.send_message(1, "Done. Bye", parse_mode="MarkdownV2")
            ok = await bot.send_message(1, "Done\\. *Bye*", parse_mode="MarkdownV2")
            with pytest.raises(BadRequest, match="(?i)unsupported start tag"):
                await bot.send_message(1, "BP < 90", parse_mode="HTML")
            with pytest.raises(BadRequest, match="(?i)message is too long"):
                await bot.send_message(1, "x" * 4097)
            emu.block_chat(2)
            with pytest.raises(Forbidden, match="blocked"):
                await bot.send_message(2, "hello?")
            return ok

    ok = asyncio.run(main())
    assert ok.message_id == 1  # failed sends did not use up message ids
    assert [c.params["text"] for c in emu.calls_to("sendMessage")][-1] == "hello?"
    assert emu.sent_texts() == ["Done\\. *Bye*"]


# --------------------------------------------------------------------------- 3. getUpdates


def test_get_updates_long_polling_and_offset_confirmation(emu):
    async def main():
        async with make_bot(emu) as bot:
            loop = asyncio.get_running_loop()
            emu.push_message(42, "hello bot", first_name="Ada")

            t0 = loop.time()
            first = await bot.get_updates(timeout=5)  # queued -> immediate
            immediate = loop.time() - t0
            again = await bot.get_updates(timeout=0)  # not confirmed -> returned again

            prompt = await bot.send_message(42, "Continue?", reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("Go", callback_data="go")]]))
            offset = first[-1].update_id + 1
            loop.call_later(0.3, emu.push_callback_query, 42, prompt.message_id, "go")
            t0 = loop.time()
            second = await bot.get_updates(offset=offset, timeout=5)  # long poll, woken by the push
            woken_after = loop.time() - t0
            answered = await bot.answer_callback_query(second[0].callback_query.id, text="On it")

            confirmed = await bot.get_updates(offset=second[-1].update_id + 1, timeout=0)
            t0 = loop.time()
            empty = await bot.get_updates(offset=second[-1].update_id + 1, timeout=1)
            waited = loop.time() - t0
            return first, again, prompt, second, answered, confirmed, empty, immediate, woken_after, waited

    first, again, prompt, second, answered, confirmed, empty, immediate, woken_after, waited = asyncio.run(main())

    assert immediate < 0.5
    assert len(first) == 1
    message = first[0].message
    assert message.text == "hello bot"
    assert message.chat.id == 42 and message.chat.type == "private"
    assert message.from_user.id == 42 and message.from_user.first_name == "Ada"
    assert [u.update_id for u in again] == [first[0].update_id]

    assert 0.25 <= woken_after < 2.0
    assert len(second) == 1 and second[0].update_id == first[0].update_id + 1
    query = second[0].callback_query
    assert query.data == "go"
    assert query.message.message_id == prompt.message_id == 2  # the user's message was id 1
    assert query.from_user.id == 42
    assert answered is True
    assert emu.callback_answers[0]["text"] == "On it"
    assert emu.callback_answers[0]["callback_query_id"] == query.id

    assert confirmed == () or list(confirmed) == []
    assert list(empty) == []
    assert 0.9 <= waited < 2.0
    assert emu.pending_updates == []
    polls = emu.calls_to("getUpdates")
    assert polls[2].params["offset"] == first[0].update_id + 1
    assert polls[2].params["timeout"] == 5


def test_push_update_of_other_kinds_and_file_download(emu):
    voice = emu.add_file(b"OggS-fake-voice-bytes", "voice/file_7.oga")

    async def main():
        async with make_bot(emu) as bot:
            emu.push_update({"message": {
                "chat": {"id": -100777, "type": "supergroup", "title": "Clinic"},
                "from": {"id": 9, "is_bot": False, "first_name": "Bo"},
                "voice": {"file_id": voice["file_id"], "file_unique_id": voice["file_unique_id"], "duration": 2},
            }})
            emu.push_update({"edited_message": {
                "message_id": 1,
                "chat": {"id": -100777, "type": "supergroup", "title": "Clinic"},
                "from": {"id": 9, "is_bot": False, "first_name": "Bo"},
                "text": "edited",
            }})
            updates = await bot.get_updates(timeout=0)
            tg_file = await bot.get_file(updates[0].message.voice.file_id)
            data = await tg_file.download_as_bytearray()
            return updates, tg_file, bytes(data)

    updates, tg_file, data = asyncio.run(main())
    assert updates[0].message.voice.file_unique_id == voice["file_unique_id"]
    assert updates[0].message.chat.type == "supergroup" and updates[0].message.chat.title == "Clinic"
    assert updates[1].edited_message.text == "edited"
    assert updates[1].edited_message.edit_date is not None
    assert updates[1].update_id == updates[0].update_id + 1
    assert tg_file.file_path.endswith("/voice/file_7.oga")
    assert data == b"OggS-fake-voice-bytes"
    assert emu.file_downloads == ["voice/file_7.oga"]


# --------------------------------------------------------------------------- 4. faults


# PTB 22.2+ warns about retry_after already inside RetryAfter.__init__
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_fault_injection_maps_to_ptb_errors(emu):
    async def main():
        async with make_bot(emu) as bot:
            emu.fail_next("sendMessage", status=429, retry_after=7)
            with pytest.raises(RetryAfter) as rate_limited:
                await bot.send_message(1, "one")

            five_hundred = emu.fail_next("sendMessage", status=500, times=2)
            server_errors = []
            for _ in range(2):
                with pytest.raises(NetworkError) as err:
                    await bot.send_message(1, "two")
                server_errors.append(err.value)

            emu.drop_next("sendMessage")
            with pytest.raises(NetworkError) as dropped:
                await bot.send_message(1, "three")

            emu.delay("sendMessage", 0.6)
            with pytest.raises(TimedOut):
                await bot.send_message(1, "four", read_timeout=0.2)
            emu.delay("sendMessage", 0)
            # like Telegram, the server still carries out a request whose client timed out
            await emu.wait_until_async(lambda: "four" in emu.sent_texts(), timeout=2)

            ok = await bot.send_message(1, "five")
            return rate_limited.value, server_errors, five_hundred, dropped.value, ok

    rate_limited, server_errors, five_hundred, dropped, ok = asyncio.run(main())

    assert retry_after_seconds(rate_limited) == 7
    assert all(type(e) is NetworkError for e in server_errors)  # plain NetworkError, not a subclass
    assert "Internal Server Error" in str(server_errors[0])
    assert five_hundred.triggered == 2 and five_hundred.remaining == 0
    assert type(dropped) is NetworkError and "RemoteProtocolError" in str(dropped)
    assert ok.message_id == 2 and ok.text == "five"
    assert emu.fault_count("sendMessage") == 4
    assert emu.fault_count("sendMessage", kind="drop") == 1
    assert [r.status for r in emu.call_log if r.method == "sendMessage"] == [429, 500, 500, None, 200, 200]
    assert emu.call_log[1].response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    assert emu.sent_texts() == ["four", "five"]  # the timed-out call still completed server-side
    assert emu.pending_faults == []


# AIORateLimiter itself reads RetryAfter.retry_after, which warns in PTB 22.2+
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_rate_limiter_retries_after_429(emu):
    async def main():
        bot = ExtBot(emu.token, base_url=emu.base_url, rate_limiter=AIORateLimiter(max_retries=2))
        async with bot:
            emu.fail_next("sendMessage", status=429, retry_after=1)
            t0 = time.monotonic()
            msg = await bot.send_message(3, "eventually")
            return msg, time.monotonic() - t0

    msg, elapsed = asyncio.run(main())
    assert msg.text == "eventually"
    assert 1.0 <= elapsed < 2.5
    assert emu.fault_count("sendMessage") == 1
    assert [r.status for r in emu.call_log if r.method == "sendMessage"] == [429, 200]


def test_unknown_method_is_recorded(emu):
    async def main():
        async with make_bot(emu) as bot:
            with pytest.raises(InvalidToken, match="method not emulated"):
                await bot.send_dice(chat_id=1)
            with pytest.raises(EndPointNotFound), pytest.warns(PTBUserWarning, match="Bot.sendDice"):
                await bot.do_api_request("sendDice", api_kwargs={"chat_id": 1})

    asyncio.run(main())
    assert [c.method for c in emu.unknown_calls] == ["sendDice", "sendDice"]
    assert emu.unknown_calls[0].params["chat_id"] == 1
    assert emu.call_log[-1].response["description"] == "Not Found: method not emulated"


# --------------------------------------------------------------------------- 5. Application


def test_application_polling_replies_to_start(emu):
    async def start(update, context):
        await update.message.reply_text(f"Hello {update.effective_user.first_name}!")

    async def main():
        app = (
            ApplicationBuilder()
            .token(emu.token)
            .base_url(emu.base_url)
            .base_file_url(emu.base_file_url)
            .build()
        )
        app.add_handler(CommandHandler("start", start))
        await app.initialize()
        await app.start()
        await app.updater.start_polling(poll_interval=0.05, timeout=1)
        try:
            pushed = emu.push_message(777, "/start", first_name="Ada")
            call = await emu.wait_for_async("sendMessage", timeout=3, chat_id=777)
        finally:
            await app.updater.stop()
            await app.stop()
            await app.shutdown()
        return pushed, call

    pushed, call = asyncio.run(main())
    assert pushed["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert call.params["text"] == "Hello Ada!"
    assert [m["text"] for m in emu.sent_messages(777)] == ["Hello Ada!"]
    methods = [c.method for c in emu.calls]
    assert methods[:3] == ["getMe", "deleteWebhook", "getUpdates"]
    assert methods[-1] == "getUpdates"  # the clean-up poll that confirms the offset
    assert emu.calls[-1].params["offset"] == pushed["update_id"] + 1
    assert emu.pending_updates == []


# --------------------------------------------------------------------------- 6. webhook


def test_webhook_delivery_to_local_receiver(emu):
    async def main():
        received = []
        answer = {"status": 200}

        async def hook(request):
            received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
            return web.Response(status=answer["status"])

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/hook"
        try:
            async with make_bot(emu) as bot:
                assert await bot.set_webhook(url=url, secret_token="s3cret-Token_1", allowed_updates=["message"])
                info = await bot.get_webhook_info()
                with pytest.raises(Conflict, match="webhook is active"):
                    await bot.get_updates(timeout=0)

                first = emu.push_message(42, "hi via webhook")
                ok_delivery = await emu.wait_for_delivery_async(first["update_id"])

                answer["status"] = 500
                second = emu.push_message(42, "second")
                failed_delivery = await emu.wait_for_delivery_async(second["update_id"])
                pending_after_failure = emu.pending_updates
                info_after_failure = await bot.get_webhook_info()

                answer["status"] = 200
                retried = await emu.deliver_webhook_async()
                assert await bot.delete_webhook()
                parsed = Update.de_json(received[0][1], bot)
                return (info, first, ok_delivery, second, failed_delivery, pending_after_failure,
                        info_after_failure, retried, received, parsed)
        finally:
            await runner.cleanup()

    (info, first, ok_delivery, second, failed_delivery, pending_after_failure,
     info_after_failure, retried, received, parsed) = asyncio.run(main())

    assert info.url.endswith("/hook") and info.pending_update_count == 0
    assert info.allowed_updates == ("message",)
    assert ok_delivery.status == 200 and ok_delivery.ok
    assert received[0] == ("s3cret-Token_1", first)
    assert parsed.message.text == "hi via webhook" and parsed.update_id == first["update_id"]

    assert failed_delivery.status == 500 and not failed_delivery.ok
    assert [u["update_id"] for u in pending_after_failure] == [second["update_id"]]
    assert info_after_failure.pending_update_count == 1
    assert info_after_failure.last_error_message == "Wrong response from the webhook: 500"

    assert [(d.update_id, d.status) for d in retried] == [(second["update_id"], 200)]
    assert [r[1]["message"]["text"] for r in received] == ["hi via webhook", "second", "second"]
    assert all(secret == "s3cret-Token_1" for secret, _ in received)
    assert emu.pending_updates == [] and emu.webhook == {}
    set_call = emu.calls_to("setWebhook")[0]
    assert set_call.params["secret_token"] == "s3cret-Token_1"
    assert set_call.params["allowed_updates"] == ["message"]


# --------------------------------------------------------------------------- misc surface


def test_misc_methods_deserialise_in_ptb(emu):
    async def main():
        async with make_bot(emu) as bot:
            emu.push_message(42, "hi", first_name="Ada")
            await bot.set_my_commands([BotCommand("start", "Start over"), BotCommand("help", "Get help")])
            commands = await bot.get_my_commands()
            await bot.set_chat_menu_button(chat_id=42, menu_button=MenuButtonCommands())
            menu = await bot.get_chat_menu_button(chat_id=42)
            chat = await bot.get_chat(42)
            member = await bot.get_chat_member(42, 42)
            typing = await bot.send_chat_action(42, "typing")
            sent = await bot.send_message(42, "bye")
            deleted = await bot.delete_message(42, sent.message_id)
            with pytest.raises(BadRequest, match="(?i)message to delete not found"):
                await bot.delete_message(42, sent.message_id)
            with pytest.raises(BadRequest, match="(?i)chat not found"):
                await bot.get_chat(31337)
            return commands, menu, chat, member, typing, deleted, await bot.log_out(), await bot.close()

    commands, menu, chat, member, typing, deleted, logged_out, closed = asyncio.run(main())
    assert [(c.command, c.description) for c in commands] == [("start", "Start over"), ("help", "Get help")]
    assert emu.commands == [
        {"command": "start", "description": "Start over"},
        {"command": "help", "description": "Get help"},
    ]
    assert menu.type == "commands"
    assert chat.id == 42 and chat.type == "private" and chat.first_name == "Ada"
    assert member.status == "member" and member.user.first_name == "Ada"
    assert typing is True and emu.chat_actions == [(42, "typing")]
    assert deleted is True and emu.deleted_messages == [(42, 2)]
    assert logged_out is True and closed is True


def test_raw_json_form_and_multipart_bodies(emu):
    with httpx.Client(timeout=5) as client:
        as_json = client.post(f"{emu.api_url}/sendMessage", json={"chat_id": 5, "text": "42"})
        as_form = client.post(f"{emu.api_url}/sendMessage", data={"chat_id": "5", "text": "true"})
        as_get = client.get(f"{emu.api_url}/getMe")
        multipart = client.post(
            f"{emu.api_url}/sendDocument",
            data={"chat_id": "5", "caption": "report"},
            files={"document": ("r.txt", b"abc", "text/plain")},
        )
    assert as_json.json()["result"]["text"] == "42"
    assert as_form.json()["result"]["text"] == "true"  # texts are never JSON-decoded
    assert as_form.json()["result"]["message_id"] == 2
    assert as_get.json()["result"]["id"] == emu.bot_id
    assert multipart.status_code == 404
    assert multipart.json() == {"ok": False, "error_code": 404, "description": "Not Found: method not emulated"}
    doc_call = emu.unknown_calls[0]
    assert doc_call.params["chat_id"] == 5 and doc_call.params["caption"] == "report"
    upload = doc_call.params["document"]
    assert isinstance(upload, UploadedFile) and upload.content == b"abc" and upload.filename == "r.txt"


def test_sync_wait_for_from_another_thread(emu):
    def bot_thread():
        async def main():
            async with make_bot(emu) as bot:
                await asyncio.sleep(0.2)
                await bot.send_message(8, "from thread")

        asyncio.run(main())

    worker = threading.Thread(target=bot_thread)
    worker.start()
    try:
        call = emu.wait_for(lambda c: c.method == "sendMessage" and c.params["chat_id"] == 8, timeout=3)
    finally:
        worker.join(5)
    assert call.params["text"] == "from thread"
    with pytest.raises(WaitTimeout):
        emu.wait_for("sendMessage", timeout=0.1, since=len(emu.calls))

    async def misuse():
        emu.wait_for("getMe", timeout=0.1)

    with pytest.raises(RuntimeError, match="wait_for_async"):
        asyncio.run(misuse())


def test_stop_is_quick_with_a_pending_long_poll():
    emulator = TelegramEmulator().start()
    port = emulator.port

    def poll():
        with httpx.Client(timeout=10) as client:
            try:
                client.post(f"{emulator.api_url}/getUpdates", json={"timeout": 30})
            except httpx.HTTPError:
                pass

    poller = threading.Thread(target=poll)
    poller.start()
    emulator.wait_for("getUpdates", timeout=2)
    t0 = time.monotonic()
    emulator.stop()
    poller.join(5)
    assert time.monotonic() - t0 < 2.0
    assert not poller.is_alive() and not emulator.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)


def test_manual_webhook_delivery_from_sync_code():
    import http.server
    import json

    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers.get("X-Telegram-Bot-Api-Secret-Token"), json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        with TelegramEmulator(webhook_auto_deliver=False) as emu:
            url = f"http://127.0.0.1:{server.server_address[1]}/tg"
            answer = httpx.post(f"{emu.api_url}/setWebhook", data={"url": url, "secret_token": "abc_123"})
            assert answer.json() == {"ok": True, "result": True, "description": "Webhook was set"}
            first = emu.push_message(5, "one")
            second = emu.push_callback_query(5, first["message"]["message_id"], "cb-data")
            time.sleep(0.1)
            assert received == []  # manual mode: nothing is posted until deliver_webhook()
            deliveries = emu.deliver_webhook()
            assert emu.deliver_webhook() == []  # nothing left
    finally:
        server.shutdown()
        server.server_close()

    assert [(d.update_id, d.status, d.secret_token) for d in deliveries] == [
        (first["update_id"], 204, "abc_123"),
        (second["update_id"], 204, "abc_123"),
    ]
    assert received == [("abc_123", first), ("abc_123", second)]
    assert received[1][1]["callback_query"]["data"] == "cb-data"


def test_concurrent_get_updates_conflict(emu):
    async def main():
        async with make_bot(emu) as first_bot, make_bot(emu) as second_bot:
            waiting = asyncio.create_task(first_bot.get_updates(timeout=5))
            await emu.wait_for_async("getUpdates")
            newer = await second_bot.get_updates(timeout=0)
            with pytest.raises(Conflict, match="(?i)terminated by other getUpdates request"):
                await waiting
            return newer

    assert list(asyncio.run(main())) == []
    assert [r.status for r in emu.call_log if r.method == "getUpdates"] == [409, 200]
