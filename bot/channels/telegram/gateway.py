"""Patients' private chats on Telegram, beside Rasa (not Rasa's own Telegram connector).

The gateway is registered in the one Telegram Application (app.py) that also serves the nurses'
staff chat. For each patient:

- identity: the Rasa sender id is "tg-" + HMAC(secret, chat id) (identity.py); the chat id itself
  is stored only in the patient's contact row, and only after consent (bot.patients);
- /start says who the bot is (automated, not a person, not a doctor), what it can and can't do,
  that it is not an emergency service, and asks consent to store the conversation (inline buttons);
- before consent nothing goes to Rasa and nothing is stored, but no message goes unanswered: the
  triage engine runs locally, red flags get the urgent/emergency answer (bot.conversation wording),
  then the consent request again;
- after consent text goes to Rasa's REST channel and Rasa's answers come back formatted for
  Telegram (format.py), with a typing indicator while Rasa thinks and Rasa's buttons as a one-time
  reply keyboard (a tapped title is sent to Rasa as the button's payload);
- Rasa down (or answering nothing): the local engine's answer and the clinic's numbers; with
  consent, a red flag is then recorded as an escalation here so the nurses still hear of it;
- photos, voice, stickers, documents, locations, edits and group chats get a clear answer;
- /forget empties Rasa's tracker (HTTP API), deletes contact, consent and stored updates of the
  chat, marks the conversation forgotten and says what the clinic keeps;
- a global error handler logs without message text and still answers with the clinic's numbers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from telegram import (
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot import conversation, patients
from bot.channels.core import Inbound
from bot.channels.core import PatientGateway as CoreGateway
from bot.channels.core.gateway import safety_answer
from bot.channels.core.rasa import RasaClient, RasaUnavailable
from bot.privacy import forget_rasa_conversation

from . import format as fmt
from .api import retry_after_seconds
from .identity import opaque_id

log = logging.getLogger(__name__)
TEXTS_FILE = Path(__file__).with_name("texts.yml")
CHANNEL = patients.TELEGRAM
CONTACT_HOW = "Telegram chat with the clinic's bot"
COMMANDS = [
    ("start", "What this assistant is, and what it stores"),
    ("forget", "Delete our conversation"),
    ("help", "How to use this assistant"),
]
SEND_ATTEMPTS = 4
TYPING_EVERY = 4.5  # Telegram shows "typing..." for about 5 s
RECORD_TIMEOUT = 10.0
CONSENT_BUDGET = 1.0  # seconds the consent lookup may take before the answer goes out without it


@lru_cache(maxsize=1)
def _texts() -> dict[str, str]:
    with open(TEXTS_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


def text(key: str) -> str:
    """A Telegram-channel text with the clinic's details filled in (plain, not yet escaped)."""
    return conversation.render(_texts()[key])


@dataclass
class Out:
    """One answer to send: plain text (escaped when sent), and how it is shown."""

    text: str
    emphasis: bool = False  # bold first sentence (emergency)
    quick_replies: list[tuple[str, str]] = field(default_factory=list)  # (title, payload)
    inline: InlineKeyboardMarkup | None = None


def consent_buttons() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(text("consent_yes_button"), callback_data="consent:yes"),
                InlineKeyboardButton(text("consent_no_button"), callback_data="consent:no"),
            ]
        ]
    )


def answers_from_rasa(answers: Sequence[dict[str, Any]]) -> list[Out]:
    """Rasa REST answers -> Outs. The triage payload ({"custom": {"triage": ...}}) follows the texts
    of its answer; for an emergency the first of those texts gets the bold first sentence."""
    outs: list[Out] = []
    group_start = 0
    for a in answers:
        body = a.get("text")
        offered = a.get("buttons") or a.get("quick_replies") or []
        buttons = [
            (str(b.get("title", "")), str(b.get("payload", b.get("title", ""))))
            for b in (offered if isinstance(offered, list) else [])
            if isinstance(b, dict)
        ]
        if isinstance(body, str) and body.strip():
            outs.append(Out(body, quick_replies=[b for b in buttons if b[0].strip()]))
        elif buttons and outs:
            outs[-1].quick_replies.extend(b for b in buttons if b[0].strip())
        custom = a.get("custom")
        if isinstance(custom, dict):
            found = custom.get("triage")
            triage = found if isinstance(found, dict) else {}
            if triage.get("level") == "emergency" and group_start < len(outs):
                outs[group_start].emphasis = True
            group_start = len(outs)
    return outs


def _chat(update: Update) -> Chat:
    """The update's chat: every handler that asks is filtered to chats' messages, which have one."""
    chat = update.effective_chat
    if chat is None:
        raise AttributeError(f"update {update.update_id} has no chat")
    return chat


def _message(update: Update) -> Message:
    """The update's message: every handler that asks is filtered to messages."""
    message = update.effective_message
    if message is None:
        raise AttributeError(f"update {update.update_id} has no message")
    return message


def _kind(update: Update) -> str:
    for name in ("message", "edited_message", "channel_post", "edited_channel_post", "callback_query"):
        if getattr(update, name, None) is not None:
            return name
    return "other"


class PatientGateway:
    def __init__(
        self,
        rasa_url: str,
        id_secret: bytes,
        sessions=None,
        rasa_token: str | None = None,
        rasa_timeout: float = 30,
        record_when_rasa_down: bool = True,
    ):
        self.rasa = RasaClient(rasa_url, token=rasa_token, timeout=rasa_timeout)
        self.rasa_timeout = rasa_timeout
        self._core: CoreGateway | None = None
        self._spool = None
        self._replay: asyncio.Task | None = None
        self.secret = id_secret
        self.sessions = sessions  # None: the process-wide database (settings)
        self.record_when_rasa_down = record_when_rasa_down
        self.app: Application | None = None
        self._warm: asyncio.Task | None = None

    # -- wiring ------------------------------------------------------------------------------------
    def _app(self) -> Application:
        """The application this gateway is registered in (register() comes first)."""
        if self.app is None:
            raise AttributeError("the gateway is not registered in an application yet")
        return self.app

    def conversation_id(self, chat_id: int) -> str:
        return opaque_id(self.secret, chat_id)

    def register(self, app: Application) -> None:
        self.app = app
        private = filters.ChatType.PRIVATE
        new_message = filters.UpdateType.MESSAGE
        app.add_handler(CallbackQueryHandler(self.on_consent_button, pattern=r"^consent:(yes|no)$"))
        app.add_handler(CallbackQueryHandler(self.on_other_button))
        staff_chat = app.bot_data.get("staff_chat_id")
        if staff_chat:
            try:
                app.add_handler(MessageHandler(filters.Chat(chat_id=int(staff_chat)), self.on_staff_chat))
            except ValueError:
                app.add_handler(MessageHandler(filters.Chat(username=str(staff_chat).lstrip("@")), self.on_staff_chat))
        app.add_handler(MessageHandler(~private, self.on_not_private))
        app.add_handler(MessageHandler(private & filters.UpdateType.EDITED, self.on_edited))
        app.add_handler(CommandHandler("start", self.on_start, filters=private & new_message))
        app.add_handler(CommandHandler("forget", self.on_forget, filters=private & new_message))
        app.add_handler(CommandHandler("help", self.on_help, filters=private & new_message))
        app.add_handler(MessageHandler(private & new_message & filters.TEXT & ~filters.COMMAND, self.on_text))
        app.add_handler(MessageHandler(private & new_message & filters.COMMAND, self.on_unknown_command))
        app.add_handler(MessageHandler(private & new_message, self.on_other_message))
        app.add_error_handler(self.on_error)

    async def start(self) -> None:
        """After the application is initialised: the command menu, and the engine loaded ahead."""
        try:
            await self._app().bot.set_my_commands(COMMANDS)
        except TelegramError as e:
            log.warning("could not set the bot's commands: %s", type(e).__name__)
        self._warm = asyncio.create_task(asyncio.to_thread(_engine))
        service = (self.app.bot_data if self.app else {}).get("escalations")
        if service is not None and self.record_when_rasa_down:
            from bot.channels.core.recording import consent_checked, escalation_recorder

            commit = consent_checked(
                escalation_recorder({CHANNEL: CONTACT_HOW}, service=service).commit,
                lambda conv: patients.has_consent(conv, self.sessions),
            )
            self._replay = asyncio.create_task(self.spool().replay_forever(commit))

    async def close(self) -> None:
        if self._replay is not None:
            self._replay.cancel()
        await self.rasa.close()

    def core(self) -> CoreGateway:
        """The patient gateway for this channel (built on first use: the escalation service is the
        application's, known once registered)."""
        if self._core is None:
            from bot.channels.core.limits import MemoryLimiter
            from bot.channels.core.recording import escalation_recorder

            service = (self.app.bot_data if self.app else {}).get("escalations")
            recorder = (
                escalation_recorder({CHANNEL: CONTACT_HOW}, self.spool(), service=service)
                if self.record_when_rasa_down and service is not None
                else None
            )
            self._core = CoreGateway(
                self.rasa,
                engine=_engine,
                recorder=recorder,
                sender_limit=MemoryLimiter(20, 10),
                rasa_timeout=self.rasa_timeout,
            )
        return self._core

    # -- sending -----------------------------------------------------------------------------------
    async def send(self, chat_id: int, html: str, markup=None) -> None:
        """One message, HTML; Telegram's 429 waits honoured, network errors retried."""
        bot = self._app().bot
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                await bot.send_message(
                    chat_id,
                    html,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
                return
            except RetryAfter as e:
                if attempt == SEND_ATTEMPTS:
                    raise
                await asyncio.sleep(min(60.0, retry_after_seconds(e)))
            except Forbidden:
                log.info("patient chat %s… blocked the bot; answer dropped", self.conversation_id(chat_id)[:12])
                return
            except BadRequest as e:
                if "parse entities" not in str(e).lower():
                    raise
                # never expected (everything is escaped); still, the patient gets the words
                await bot.send_message(chat_id, fmt.plain([html]), reply_markup=markup)
                return
            except (TimedOut, NetworkError):
                if attempt == SEND_ATTEMPTS:
                    raise
                await asyncio.sleep(0.5 * 2 ** (attempt - 1))

    async def deliver(self, chat_id: int, outs: Sequence[Out], context: ContextTypes.DEFAULT_TYPE) -> None:
        """Send answers in order. Quick replies become a one-time keyboard on the message that
        carries them (and are remembered, title -> payload); a keyboard left from the previous
        answer is removed with the first message."""
        chat_data = context.chat_data if context.chat_data is not None else {}
        messages: list[list[Any]] = []
        replies: dict[str, str] = {}
        for out in outs:
            chunks = fmt.to_html(out.text, emphasis=out.emphasis)
            for i, chunk in enumerate(chunks):
                markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = None
                if i == len(chunks) - 1:
                    if out.inline is not None:
                        markup = out.inline
                    elif out.quick_replies:
                        markup = fmt.keyboard([t for t, _ in out.quick_replies])
                        replies = {t.strip().casefold(): p for t, p in out.quick_replies}
                messages.append([chunk, markup])
        if not messages:
            return
        keyboard_left = bool(chat_data.get("keyboard")) and not replies
        if keyboard_left:
            free = next((m for m in messages if m[1] is None), None)
            if free is not None:
                free[1] = fmt.remove_keyboard()
                keyboard_left = False
        chat_data["keyboard"] = bool(replies) or keyboard_left
        chat_data["quick_replies"] = replies
        for html, markup in messages:
            await self.send(chat_id, html, markup)

    async def say(self, chat_id: int, context, *keys: str, inline: InlineKeyboardMarkup | None = None) -> None:
        outs = [Out(text(k)) for k in keys]
        if inline is not None and outs:
            outs[-1].inline = inline
        await self.deliver(chat_id, outs, context)

    def _typing(self, chat_id: int) -> asyncio.Task:
        async def loop() -> None:
            while True:
                try:
                    await self._app().bot.send_chat_action(chat_id, ChatAction.TYPING)
                except TelegramError:
                    return
                await asyncio.sleep(TYPING_EVERY)

        return asyncio.create_task(loop())

    # -- consent -----------------------------------------------------------------------------------
    async def _consented(self, conversation_id: str) -> bool:
        return await asyncio.to_thread(patients.has_consent, conversation_id, self.sessions)

    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = _chat(update).id
        if await self._consented(self.conversation_id(chat_id)):
            await self.say(chat_id, context, "intro", "consent_already")
        else:
            await self.say(chat_id, context, "intro", "consent_request", inline=consent_buttons())

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.say(_chat(update).id, context, "help")

    async def on_consent_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None  # registered as a CallbackQueryHandler: only callback queries come here
        message = query.message
        if message is None or message.chat.type != ChatType.PRIVATE:
            await query.answer(text("button_expired"))
            return
        chat_id = message.chat.id
        conv = self.conversation_id(chat_id)
        agreed = query.data == "consent:yes"
        already = await self._consented(conv)
        if agreed:
            await asyncio.to_thread(
                patients.record_consent, conv, CHANNEL, str(chat_id), "telegram button", self.sessions
            )
        elif not already:
            await asyncio.to_thread(patients.record_refusal, conv, CHANNEL, self.sessions)
        await query.answer()
        try:
            await query.edit_message_reply_markup(reply_markup=None)
        except TelegramError:
            pass  # the buttons stay; pressing them again is harmless
        if agreed:
            await self.say(chat_id, context, "consent_already" if already else "consent_given")
        elif already:
            await self.deliver(chat_id, [Out(text("consent_already"))], context)
        else:
            await self.say(chat_id, context, "consent_declined")
        log.info("consent %s for %s…", "given" if agreed else "declined", conv[:12])

    async def on_other_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None  # registered as a CallbackQueryHandler: only callback queries come here
        await query.answer(text("button_expired"))

    # -- messages ----------------------------------------------------------------------------------
    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.handle_text(_chat(update).id, _message(update).text or "", context)

    async def handle_text(self, chat_id: int, message: str, context: ContextTypes.DEFAULT_TYPE) -> None:
        conv = self.conversation_id(chat_id)
        try:
            # the database retries for many seconds when it is down: the answer does not wait
            consented = await asyncio.wait_for(self._consented(conv), CONSENT_BUDGET)
        except Exception as e:
            log.error("consent lookup failed for %s… (%s); answering locally", conv[:12], type(e).__name__)
            await self.deliver(chat_id, await self.local_answer(conv, message, consented=None), context)
            return
        if not consented:
            await self.deliver(chat_id, await self.before_consent(message), context)
            return
        chat_data = context.chat_data if context.chat_data is not None else {}
        replies = chat_data.get("quick_replies") or {}
        to_rasa = replies.get(message.strip().casefold(), message)
        typing = self._typing(chat_id)
        try:
            # the channel-neutral gateway: limits, the red-flag budget, Rasa's level checked against
            # the engine's, and the engine's answer (escalation recorded) when Rasa fails
            reply = await self.core().handle(Inbound(CHANNEL, conv, to_rasa))
            outs = answers_from_rasa(reply.messages)
        finally:
            typing.cancel()
        if not outs:
            outs = await self.local_answer(conv, message, consented=True)
        await self.deliver(chat_id, outs, context)

    async def before_consent(self, message: str) -> list[Out]:
        """Nothing stored, nothing sent to Rasa; red flags still get their answer."""
        request = Out(text("consent_request_short"), inline=consent_buttons())
        try:
            decision = await asyncio.to_thread(_engine().triage, message)
        except Exception:
            log.exception("local triage failed")
            return [Out(text("error")), request]
        if decision.red_flag:
            return _symptom_outs(decision, None) + [request]
        return [Out(text("before_consent")), request]

    async def local_answer(self, conv: str, message: str, consented: bool | None) -> list[Out]:
        """Rasa down: the engine's answer (symptoms) or an apology, always with the clinic's numbers."""
        try:
            decision = await asyncio.to_thread(_engine().triage, message)
        except Exception:
            log.exception("local triage failed")
            return [Out(text("error"))]
        if decision.level == "info":
            return [Out(text("rasa_down"))]
        reference = None
        if decision.red_flag and consented and self.record_when_rasa_down:
            reference = await self._record_escalation(conv, decision, message)
        elif decision.red_flag and consented is None and self.record_when_rasa_down:
            # the database is down, so consent cannot be checked: spooled, and committed when the
            # database is back only if the patient had consented (bot.channels.core.recording)
            await asyncio.to_thread(self._spool_unchecked, conv, decision, message)
        return _symptom_outs(decision, reference)

    def _spool_unchecked(self, conv: str, decision, message: str) -> None:
        from bot.channels.core.recording import plain_record

        record = plain_record(conv, CHANNEL, decision, message, CONTACT_HOW)
        record["require_consent"] = True
        self.spool().put(record)

    def spool(self):
        from bot import settings as settings_mod
        from bot.channels.core.spool import Spool
        from bot.channels.core.staff_warning import telegram_staff_warning

        if self._spool is None:
            cfg = settings_mod.get()
            self._spool = Spool(
                cfg.data_dir / "spool",
                warn=telegram_staff_warning(
                    cfg.telegram_bot_token, cfg.telegram_staff_chat_id, cfg.telegram_api_base_url
                ),
            )
        return self._spool

    async def _record_escalation(self, conv: str, decision, message: str) -> str | None:
        """The same record the gateway makes (bot.channels.core.recording), spooled if refused."""
        recorder = self.core().recorder
        if recorder is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.to_thread(recorder, conv, CHANNEL, decision, message), RECORD_TIMEOUT)
        except Exception:
            log.exception("could not record the escalation for %s… while Rasa is down", conv[:12])
            return None

    async def on_other_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        m = _message(update)
        chat_id = _chat(update).id
        if m.voice or m.audio or m.video or m.video_note:
            key = "not_voice"
        elif m.location or m.venue:
            key = "not_location"
        else:
            key = "not_text"
        await self.say(chat_id, context, key)
        if m.caption and m.caption.strip():
            await self.say(chat_id, context, "caption_read")
            await self.handle_text(chat_id, m.caption, context)

    async def on_edited(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.say(_chat(update).id, context, "edited")

    async def on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.say(_chat(update).id, context, "unknown_command")

    async def on_not_private(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        try:
            await self.send(chat.id, fmt.escape(text("private_only")))
        except TelegramError as e:
            log.info("could not answer in a %s chat: %s", chat.type, type(e).__name__)

    async def on_staff_chat(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Nurses talk among themselves in the staff chat: the bot stays quiet there."""

    # -- forgetting --------------------------------------------------------------------------------
    async def on_forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = _chat(update).id
        conv = self.conversation_id(chat_id)
        tracker_cleared = False
        try:
            await self.rasa.replace_tracker(conv, [])  # clears Rasa's in-memory copy
            try:
                await asyncio.to_thread(forget_rasa_conversation, conv)  # and the stored events
            except Exception as e:  # reported below: remaining_messages tells the truth
                log.error("could not delete Rasa's stored events for %s…: %s", conv[:12], type(e).__name__)
            remaining = await self.rasa.remaining_messages(conv)
            tracker_cleared = remaining == 0
            if not tracker_cleared:
                log.error(
                    "Rasa kept %d messages of %s… after the tracker was replaced with no events "
                    "(its tracker store only appends)",
                    remaining,
                    conv[:12],
                )
        except RasaUnavailable as e:
            log.warning("could not empty Rasa's tracker for %s…: %s", conv[:12], e)
        await asyncio.to_thread(
            patients.forget, conv, CHANNEL, str(chat_id), {"rasa_tracker_cleared": tracker_cleared}, self.sessions
        )
        if context.chat_data is not None:
            context.chat_data.clear()
            context.chat_data["keyboard"] = True  # whatever keyboard was shown goes too
        await self.say(
            chat_id,
            context,
            "forget_done" if tracker_cleared else "forget_tracker_failed",
            "forget_kept",
            "forget_next",
        )
        log.info("patient data forgotten for %s… (Rasa tracker cleared: %s)", conv[:12], tracker_cleared)

    # -- errors ------------------------------------------------------------------------------------
    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log without message text (exception type and stack only), and still answer a patient."""
        err = context.error
        kind = _kind(update) if isinstance(update, Update) else type(update).__name__
        update_id = getattr(update, "update_id", None)
        stack = "".join(traceback.format_tb(err.__traceback__)) if err is not None else ""
        log.error("error handling update %s (%s): %s\n%s", update_id, kind, type(err).__name__, stack)
        if not isinstance(update, Update):
            return
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return
        try:
            await self.send(chat.id, fmt.escape(text("error")))
        except Exception as e:  # noqa: BLE001 - nothing more can be done; logged
            log.error("could not send the error answer for update %s: %s", update_id, type(e).__name__)


_engine_lock = threading.Lock()


def _engine():
    """The triage engine (loaded once, about 2 s; the warm-up and a first message may race)."""
    from bot.triage import engine

    with _engine_lock:
        return engine()


def _symptom_outs(decision, reference: str | None) -> list[Out]:
    """The gateway's safety answer (bot.conversation's wording, without the follow-up question),
    formatted for Telegram."""
    return answers_from_rasa(safety_answer(decision, reference))
