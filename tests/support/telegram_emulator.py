"""A local, in-memory emulator of the Telegram Bot API for tests.

The real Telegram servers cannot be reached from the test machines, so tests point
python-telegram-bot (PTB) at this emulator instead::

    with TelegramEmulator() as emu:                      # sync tests
        bot = telegram.Bot(emu.token, base_url=emu.base_url,
                           base_file_url=emu.base_file_url)
        ...

    async with TelegramEmulator() as emu:                # async tests
        ...

The HTTP server is an aiohttp application bound to 127.0.0.1 on a port chosen by the
OS. It always runs in a background thread with its own event loop, so it behaves the
same whether the test is synchronous or runs its own loop with ``asyncio.run``. All
state is guarded by one lock; the test-facing methods may be called from any thread.

Blocking helpers (``wait_for``, ``deliver_webhook``, ...) refuse to run on a thread
that has a running event loop, because they would freeze that loop (and with it the
bot under test). Use their ``*_async`` twins there.

Emulated methods (names are matched case-insensitively, as Telegram does):
getMe, logOut, close, getUpdates, setWebhook, deleteWebhook, getWebhookInfo,
sendMessage, editMessageText, editMessageReplyMarkup, deleteMessage,
answerCallbackQuery, sendChatAction, setMyCommands, getMyCommands, deleteMyCommands,
setChatMenuButton, getChatMenuButton, getChat, getChatMember, getFile.
Any other method is answered with 404 "Not Found: method not emulated" and recorded in
``unknown_calls`` (tests can add methods with ``register_method``).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, NamedTuple, Optional, Union

import aiohttp
from aiohttp import web

__all__ = [
    "ApiError",
    "Call",
    "CallRecord",
    "Fault",
    "TelegramEmulator",
    "UploadedFile",
    "WaitTimeout",
    "WebhookDelivery",
]

JSON = dict[str, Any]

# Update kinds Telegram leaves out of getUpdates / webhooks unless asked for explicitly.
_NOT_DELIVERED_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_MESSAGE_KINDS = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_message",
        "edited_business_message",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Form/multipart values PTB sends as plain strings and that must never be JSON-decoded
# (a text of "42" or "true" is still a text). Everything else is JSON-decoded when possible,
# because PTB sends non-string values JSON-dumped (numbers, bools, lists, objects).
_RAW_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "url",
        "secret_token",
        "callback_query_id",
        "action",
        "ip_address",
        "language_code",
        "inline_message_id",
        "business_connection_id",
        "message_effect_id",
        "question",
        "emoji",
        "title",
        "description",
        "name",
        "short_description",
        "first_name",
        "last_name",
        "address",
        "phone_number",
        "vcard",
        "custom_title",
        "invite_link",
        "game_short_name",
        "payload",
        "currency",
        "provider_token",
        "start_parameter",
        "file_id",
        "data",
        "query",
        "next_offset",
        "photo",
        "document",
        "audio",
        "voice",
        "video",
        "animation",
        "sticker",
        "video_note",
        "thumbnail",
    }
)
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOT_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_MDV2_RESERVED = frozenset(".!-=+#{}")
_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
_HTML_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^>]*)>")

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


# --------------------------------------------------------------------------- records


class Call(NamedTuple):
    """One API request as the bot made it: ``(method, params)``."""

    method: str
    params: JSON


@dataclass
class CallRecord:
    """Everything known about one API request, including how it was answered."""

    index: int
    method: str
    params: JSON
    http_method: str
    received_at: float
    status: Optional[int] = None  # HTTP status answered; None while pending or when dropped
    fault: Optional[str] = None  # "error", "drop" or None
    response: Any = None  # the JSON body answered (None when dropped)

    @property
    def call(self) -> Call:
        return Call(self.method, self.params)


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    field_name: str
    filename: Optional[str]
    content_type: Optional[str]
    content: bytes

    def __repr__(self) -> str:  # keep call logs readable
        return f"UploadedFile({self.field_name!r}, {self.filename!r}, {len(self.content)} bytes)"


@dataclass
class Fault:
    """A scheduled fault. ``triggered`` counts how often it has fired."""

    method: str  # as given ("*" matches every method)
    kind: str  # "error" or "drop"
    times: int
    status: int = 0
    retry_after: Optional[int] = None
    description: Optional[str] = None
    parameters: Optional[JSON] = None
    raw_body: Optional[bytes] = None
    triggered: int = 0

    @property
    def remaining(self) -> int:
        return self.times - self.triggered

    def matches(self, method: str) -> bool:
        return self.method == "*" or self.method.lower() == method.lower()


@dataclass
class WebhookDelivery:
    """One POST of an update to the webhook URL."""

    update_id: int
    url: str
    secret_token: Optional[str]
    status: Optional[int]  # HTTP status the receiver answered; None on a connection error
    error: Optional[str]
    response_body: str
    at: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status <= 299


class _WithDescription(NamedTuple):
    """A successful result that Telegram answers with a ``description`` (setWebhook...)."""

    result: Any
    description: str


class ApiError(Exception):
    """Raised by method handlers (including ones added with ``register_method``) to answer
    with a Telegram error body."""

    def __init__(self, status: int, description: Optional[str] = None, parameters: Optional[JSON] = None):
        self.status = status
        self.description = description or _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        self.parameters = parameters
        super().__init__(f"{status}: {self.description}")


class WaitTimeout(AssertionError, TimeoutError):
    """Raised by the ``wait_for*`` helpers when nothing matched in time."""


# --------------------------------------------------------------------------- helpers


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode_form_value(name: str, value: str) -> Any:
    if name in _RAW_STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _as_int(value: Any, name: str, default: Optional[int] = None) -> Optional[int]:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Bad Request: invalid {name} specified") from None


def _update_kind(update: JSON) -> str:
    kinds = [k for k in update if k != "update_id"]
    if len(kinds) != 1:
        raise ValueError(f"an update must have exactly one payload key besides update_id, got {kinds}")
    return kinds[0]


def _check_markdown_v2(text: str) -> None:
    """A deliberately small MarkdownV2 check: reports the reserved characters that are
    never valid unescaped outside code spans and link URLs (the classic bot bug)."""
    i, n = 0, len(text)
    in_code = in_pre = in_url = False
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if text.startswith("```", i) and not in_code:
            in_pre = not in_pre
            i += 3
            continue
        if in_pre:
            i += 1
            continue
        if ch == "`":
            in_code = not in_code
        elif in_code:
            pass
        elif in_url:
            if ch == ")":
                in_url = False
        elif ch == "(" and i > 0 and text[i - 1] == "]":
            in_url = True
        elif ch in _MDV2_RESERVED or ch in "()":
            raise ApiError(
                400,
                f"Bad Request: can't parse entities: Character '{ch}' is reserved and must be "
                f"escaped with the preceding '\\'",
            )
        i += 1


def _check_html(text: str) -> None:
    """A small HTML check: unsupported tags and unbalanced tags, as Telegram rejects them."""
    stack: list[str] = []
    for match in _HTML_TAG_RE.finditer(text):
        closing, tag = match.group(1) == "/", match.group(2).lower()
        offset = len(text[: match.start()].encode("utf-8"))
        if tag not in _HTML_TAGS:
            kind = "end" if closing else "start"
            raise ApiError(
                400,
                f'Bad Request: can\'t parse entities: Unsupported {kind} tag "{tag}" '
                f"at byte offset {offset}",
            )
        if not closing:
            stack.append(tag)
        elif not stack or stack[-1] != tag:
            raise ApiError(
                400,
                f'Bad Request: can\'t parse entities: Unmatched end tag at byte offset {offset}, '
                f'expected "</{stack[-1]}>", found "</{tag}>"'
                if stack
                else f'Bad Request: can\'t parse entities: Unexpected end tag at byte offset {offset}',
            )
        else:
            stack.pop()
    if stack:
        raise ApiError(
            400,
            f'Bad Request: can\'t parse entities: Can\'t find end tag corresponding to start tag "{stack[-1]}"',
        )
    stripped = _HTML_TAG_RE.sub("", text)
    if "<" in stripped:
        offset = len(stripped[: stripped.index("<")].encode("utf-8"))
        raise ApiError(
            400,
            f"Bad Request: can't parse entities: Unsupported start tag \"\" at byte offset {offset}",
        )


# --------------------------------------------------------------------------- emulator


Predicate = Union[str, Callable[[Call], bool]]


class TelegramEmulator:
    """A Telegram Bot API emulator; see the module docstring.

    Args:
        bot_id: the bot's user id (also the token's prefix).
        bot_username: the bot's username (without "@").
        token: override the generated fake token.
        strict_chats: if true, sending to a chat the emulator has never seen answers
            400 "chat not found"; otherwise the chat is created on the fly.
        validate_formatting: check MarkdownV2/HTML texts for the mistakes Telegram rejects.
        webhook_auto_deliver: when a webhook is set, post pushed updates to it right away.
    """

    def __init__(
        self,
        *,
        bot_id: int = 123456,
        bot_username: str = "emulated_test_bot",
        bot_first_name: str = "Emulated Test Bot",
        token: Optional[str] = None,
        strict_chats: bool = False,
        validate_formatting: bool = True,
        webhook_auto_deliver: bool = True,
        webhook_timeout: float = 5.0,
    ) -> None:
        self.bot_id = bot_id
        # Built at run time and obviously fake, so no token-shaped literal lives in the repo.
        self.token = token or f"{bot_id}:" + "-".join(("TEST", "EMULATOR", secrets.token_hex(8)))
        self.bot_user: JSON = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.strict_chats = strict_chats
        self.validate_formatting = validate_formatting
        self.webhook_auto_deliver = webhook_auto_deliver
        self.webhook_timeout = webhook_timeout

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._runner: Optional[web.AppRunner] = None
        self._session: Optional[aiohttp.ClientSession] = None
        self._port: Optional[int] = None
        self._closing = False
        self._bg_tasks: set[asyncio.Task] = set()
        self._poll_event: Optional[asyncio.Event] = None
        self._delivery_lock: Optional[asyncio.Lock] = None

        self._handlers: dict[str, Callable[[JSON], Any]] = {}
        for name, func in (
            ("getMe", self._m_get_me),
            ("logOut", self._m_true),
            ("close", self._m_true),
            ("getUpdates", self._m_get_updates),
            ("setWebhook", self._m_set_webhook),
            ("deleteWebhook", self._m_delete_webhook),
            ("getWebhookInfo", self._m_get_webhook_info),
            ("sendMessage", self._m_send_message),
            ("editMessageText", self._m_edit_message_text),
            ("editMessageReplyMarkup", self._m_edit_message_reply_markup),
            ("deleteMessage", self._m_delete_message),
            ("answerCallbackQuery", self._m_answer_callback_query),
            ("sendChatAction", self._m_send_chat_action),
            ("setMyCommands", self._m_set_my_commands),
            ("getMyCommands", self._m_get_my_commands),
            ("deleteMyCommands", self._m_delete_my_commands),
            ("setChatMenuButton", self._m_set_chat_menu_button),
            ("getChatMenuButton", self._m_get_chat_menu_button),
            ("getChat", self._m_get_chat),
            ("getChatMember", self._m_get_chat_member),
            ("getFile", self._m_get_file),
        ):
            self._handlers[name.lower()] = func
        self._reset_state()

    # ------------------------------------------------------------------ state

    def _reset_state(self) -> None:
        with self._lock:
            self._records: list[CallRecord] = []
            self._faults: list[Fault] = []
            self._fault_log: list[tuple[str, Fault]] = []
            self._delays: dict[str, float] = {}
            self._next_update_id = 10_000
            self._pending: list[JSON] = []
            self._pushed: list[JSON] = []
            self._allowed_updates: Optional[list[str]] = None
            self._poll_generation = 0
            self._chats: dict[int, JSON] = {}
            self._users: dict[int, JSON] = {}
            self._messages: dict[tuple[int, int], JSON] = {}
            self._next_message_id: dict[int, int] = {}
            self._sent: list[JSON] = []
            self._edited: list[JSON] = []
            self._deleted: list[tuple[int, int]] = []
            self._callback_queries: dict[str, JSON] = {}
            self._callback_answers: list[JSON] = []
            self._chat_actions: list[tuple[Any, str]] = []
            self._commands: dict[tuple[str, str], list[JSON]] = {}
            self._menu_buttons: dict[Any, JSON] = {}
            self._chat_members: dict[tuple[int, int], JSON] = {}
            self._blocked_chats: set[int] = set()
            self._webhook: JSON = {}
            self._webhook_last_error: Optional[tuple[int, str]] = None
            self._auto_delivery_active = False
            self._deliveries: list[WebhookDelivery] = []
            self._files: dict[str, JSON] = {}  # file_id -> {file json + "content"}
            self._file_paths: dict[str, str] = {}  # file_path -> file_id
            self._file_downloads: list[str] = []
            self._unknown: list[Call] = []

    def reset(self) -> None:
        """Forget every call, update, chat, message, fault and webhook (keeps the server)."""
        self._reset_state()
        self._notify_pollers()

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """Root URL of the emulator, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``telegram.Bot(base_url=...)`` / ``ApplicationBuilder().base_url(...)``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``telegram.Bot(base_file_url=...)``."""
        return f"{self.url}/file/bot"

    @property
    def api_url(self) -> str:
        """The full API prefix including the token: ``{base_url}{token}``; append ``/method``."""
        return f"{self.base_url}{self.token}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "TelegramEmulator":
        """Start the server in a background thread; returns once it accepts connections."""
        if self.running:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._async_setup())
            except BaseException as exc:  # noqa: BLE001 - reported to the starter
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._async_teardown())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._closing = False
        self._thread = threading.Thread(target=run, name="telegram-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the Telegram emulator did not start within 10 s")
        if failure:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError("the Telegram emulator failed to start") from failure[0]
        return self

    def stop(self) -> None:
        """Stop the server and join its thread. Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self._closing = True
        if thread.is_alive():
            loop.call_soon_threadsafe(self._wake_pollers_in_loop)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(15)
        self._thread = None
        self._loop = None
        self._port = None

    def __enter__(self) -> "TelegramEmulator":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    async def __aenter__(self) -> "TelegramEmulator":
        await asyncio.get_running_loop().run_in_executor(None, self.start)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop)

    async def _async_setup(self) -> None:
        self._poll_event = asyncio.Event()
        self._delivery_lock = asyncio.Lock()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        # handler_cancellation stays off: like Telegram, a request whose client gave up
        # (read timeout, dropped connection) is still carried out, e.g. the message is sent.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def _async_teardown(self) -> None:
        self._wake_pollers_in_loop()
        for task in list(self._bg_tasks):
            task.cancel()
        if self._bg_tasks:
            await asyncio.gather(*self._bg_tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ notification plumbing

    def _changed(self) -> None:
        """Call with the lock held after recording anything tests may wait for."""
        self._cond.notify_all()
        for loop, event in self._async_waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed
                pass

    def _wake_pollers_in_loop(self) -> None:
        if self._poll_event is not None:
            self._poll_event.set()
            self._poll_event = asyncio.Event()

    def _notify_pollers(self) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                loop.call_soon_threadsafe(self._wake_pollers_in_loop)
            except RuntimeError:
                pass

    def _spawn(self, coro: Awaitable[Any]) -> None:
        """Run a coroutine as a background task of the server loop (from any thread)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            coro.close()  # type: ignore[attr-defined]
            return

        def create() -> None:
            task = loop.create_task(coro)
            self._bg_tasks.add(task)
            task.add_done_callback(self._bg_tasks.discard)

        loop.call_soon_threadsafe(create)

    def _run_in_server_loop(self, coro: Awaitable[Any], timeout: float) -> Any:
        self._refuse_blocking_in_loop("deliver_webhook", "deliver_webhook_async")
        loop = self._loop
        if loop is None:
            raise RuntimeError("the emulator is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    async def _run_in_server_loop_async(self, coro: Awaitable[Any]) -> Any:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the emulator is not running")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    @staticmethod
    def _refuse_blocking_in_loop(name: str, alternative: str) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        raise RuntimeError(
            f"{name}() blocks, and this thread runs an event loop (which it would freeze); "
            f"use `await emu.{alternative}(...)` instead"
        )

    # ------------------------------------------------------------------ HTTP layer

    async def _read_params(self, request: web.Request) -> JSON:
        params: JSON = {k: _decode_form_value(k, v) for k, v in request.query.items()}
        if not request.body_exists:
            return params
        ctype = request.content_type
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = UploadedFile(key, value.filename, value.content_type, value.file.read())
                else:
                    params[key] = _decode_form_value(key, str(value))
            return params
        raw = await request.read()
        if not raw.strip():
            return params
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON encoded request parameters") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: parameters must be a JSON object")
        params.update(body)
        return params

    @staticmethod
    def _json_response(status: int, body: Any) -> web.Response:
        return web.Response(
            status=status, body=json.dumps(body).encode(), content_type="application/json"
        )

    @staticmethod
    def _error_body(status: int, description: str, parameters: Optional[JSON] = None) -> JSON:
        body: JSON = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return body

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._json_response(401, self._error_body(401, "Unauthorized"))
        method = request.match_info["method"]
        try:
            params = await self._read_params(request)
        except ApiError as exc:
            params, early_error = {}, exc
        else:
            early_error = None

        with self._lock:
            record = CallRecord(
                index=len(self._records),
                method=method,
                params=params,
                http_method=request.method,
                received_at=time.time(),
            )
            self._records.append(record)
            self._changed()
            delay = self._delays.get(method.lower(), self._delays.get("*", 0.0))
            fault = self._take_fault(method)
            if fault is not None:
                record.fault = fault.kind
                self._fault_log.append((method, fault))

        if delay > 0:
            await asyncio.sleep(delay)

        if fault is not None and fault.kind == "drop":
            with self._lock:
                self._changed()
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)
        if fault is not None:
            return self._fault_response(record, fault)
        if early_error is not None:
            return self._answer(record, early_error.status, self._error_body(early_error.status, early_error.description))

        handler = self._handlers.get(method.lower())
        if handler is None:
            with self._lock:
                self._unknown.append(Call(method, params))
            return self._answer(record, 404, self._error_body(404, "Not Found: method not emulated"))
        try:
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError as exc:
            return self._answer(
                record, exc.status, self._error_body(exc.status, exc.description, exc.parameters)
            )
        body: JSON = {"ok": True, "result": result}
        if isinstance(result, _WithDescription):
            body = {"ok": True, "result": result.result, "description": result.description}
        return self._answer(record, 200, body)

    def _answer(self, record: CallRecord, status: int, body: JSON) -> web.Response:
        with self._lock:
            record.status = status
            record.response = copy.deepcopy(body)
            self._changed()
        return self._json_response(status, body)

    def _fault_response(self, record: CallRecord, fault: Fault) -> web.Response:
        status = fault.status
        if fault.raw_body is not None:
            with self._lock:
                record.status = status
                record.response = fault.raw_body
                self._changed()
            return web.Response(status=status, body=fault.raw_body, content_type="text/html")
        parameters = dict(fault.parameters or {})
        if status == 429:
            retry_after = 1 if fault.retry_after is None else fault.retry_after
            parameters.setdefault("retry_after", retry_after)
            description = fault.description or f"Too Many Requests: retry after {retry_after}"
        else:
            description = fault.description or _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        return self._answer(record, status, self._error_body(status, description, parameters or None))

    def _take_fault(self, method: str) -> Optional[Fault]:
        for fault in self._faults:
            if fault.remaining > 0 and fault.matches(method):
                fault.triggered += 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._json_response(401, self._error_body(401, "Unauthorized"))
        path = request.match_info["path"]
        with self._lock:
            self._file_downloads.append(path)
            self._changed()
            file_id = self._file_paths.get(path)
            content = self._files[file_id]["content"] if file_id else None
        if content is None:
            return self._json_response(404, self._error_body(404, "Not Found"))
        return web.Response(body=content, content_type="application/octet-stream")

    # ------------------------------------------------------------------ chats, users, messages

    def _chat_for(self, chat_id: Any, *, create: bool = True) -> JSON:
        """The stored chat for a ``chat_id`` parameter (int, numeric string or @username)."""
        with self._lock:
            if isinstance(chat_id, str) and chat_id.startswith("@"):
                for chat in self._chats.values():
                    if chat.get("username", "").lower() == chat_id[1:].lower():
                        return chat
                raise ApiError(400, "Bad Request: chat not found")
            cid = _as_int(chat_id, "chat_id")
            if cid is None:
                raise ApiError(400, "Bad Request: chat_id is empty")
            chat = self._chats.get(cid)
            if chat is None:
                if self.strict_chats or not create:
                    raise ApiError(400, "Bad Request: chat not found")
                chat = self.add_chat(cid)
            return chat

    def add_chat(
        self,
        chat_id: int,
        chat_type: Optional[str] = None,
        *,
        title: Optional[str] = None,
        first_name: Optional[str] = None,
        username: Optional[str] = None,
    ) -> JSON:
        """Register (or update) a chat. The type defaults from the id's sign, as on Telegram."""
        if chat_type is None:
            known = self._chats.get(chat_id)
            if known is not None:
                chat_type = known["type"]
            else:
                chat_type = "private" if chat_id > 0 else ("supergroup" if chat_id < -10**12 else "group")
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                chat = {"id": chat_id, "type": chat_type}
                if chat_type == "private":
                    chat["first_name"] = first_name or f"User {chat_id}"
                else:
                    chat["title"] = title or f"Chat {chat_id}"
                self._chats[chat_id] = chat
            else:
                chat["type"] = chat_type
                if first_name and chat_type == "private":
                    chat["first_name"] = first_name
                if title and chat_type != "private":
                    chat["title"] = title
            if username:
                chat["username"] = username
            return chat

    def _register_chat(self, chat: JSON) -> JSON:
        with self._lock:
            stored = self._chats.setdefault(chat["id"], {})
            stored.update(copy.deepcopy(chat))
            return stored

    def _new_message_id(self, chat_id: int) -> int:
        with self._lock:
            nxt = self._next_message_id.get(chat_id, 1)
            self._next_message_id[chat_id] = nxt + 1
            return nxt

    def _store_message(self, message: JSON) -> None:
        with self._lock:
            chat_id = message["chat"]["id"]
            mid = message["message_id"]
            self._messages[(chat_id, mid)] = message
            if self._next_message_id.get(chat_id, 1) <= mid:
                self._next_message_id[chat_id] = mid + 1

    def _user(self, user_id: int, first_name: Optional[str] = None, **extra: Any) -> JSON:
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                user = {"id": user_id, "is_bot": False, "first_name": first_name or f"User {user_id}"}
                self._users[user_id] = user
            elif first_name:
                user["first_name"] = first_name
            user.update({k: v for k, v in extra.items() if v is not None})
            return user

    def _message_for(self, params: JSON, *, action: str) -> JSON:
        chat = self._chat_for(params.get("chat_id"), create=False)
        mid = _as_int(params.get("message_id"), "message_id")
        if mid is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = self._messages.get((chat["id"], mid))
        if message is None:
            raise ApiError(400, f"Bad Request: message to {action} not found")
        return message

    # ------------------------------------------------------------------ method handlers

    def _m_true(self, params: JSON) -> bool:
        return True

    def _m_get_me(self, params: JSON) -> JSON:
        return copy.deepcopy(self.bot_user)

    async def _m_get_updates(self, params: JSON) -> list[JSON]:
        offset = _as_int(params.get("offset"), "offset", 0) or 0
        limit = min(max(_as_int(params.get("limit"), "limit", 100) or 100, 1), 100)
        try:
            timeout = max(float(params.get("timeout") or 0), 0.0)
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: invalid timeout specified") from None
        allowed = params.get("allowed_updates")
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._webhook.get("url"):
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if isinstance(allowed, list):
                self._allowed_updates = list(allowed) or None
            self._poll_generation += 1
            generation = self._poll_generation
            self._confirm(offset)
        self._wake_pollers_in_loop()  # an older long poll is terminated by this one
        deadline = loop.time() + timeout
        while True:
            with self._lock:
                if generation != self._poll_generation:
                    raise ApiError(409)
                batch = self._select_updates(limit, self._allowed_updates)
                event = self._poll_event
            if batch or self._closing:
                return batch
            remaining = deadline - loop.time()
            if remaining <= 0 or event is None:
                return []
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]

    def _select_updates(self, limit: int, allowed: Optional[list[str]]) -> list[JSON]:
        out = []
        for update in self._pending:
            kind = _update_kind(update)
            if allowed is not None and kind not in allowed:
                continue
            if allowed is None and kind in _NOT_DELIVERED_BY_DEFAULT:
                continue
            out.append(copy.deepcopy(update))
            if len(out) >= limit:
                break
        return out

    def _m_set_webhook(self, params: JSON) -> _WithDescription:
        url = params.get("url") or ""
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN_RE.match(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if url and not re.match(r"^https?://", str(url)):
            raise ApiError(400, "Bad Request: invalid webhook URL specified")
        with self._lock:
            if params.get("drop_pending_updates"):
                self._pending.clear()
            if not url:
                had = bool(self._webhook.get("url"))
                self._webhook = {}
                self._changed()
                return _WithDescription(True, "Webhook was deleted" if had else "Webhook is already deleted")
            self._webhook = {
                "url": url,
                "secret_token": secret,
                "allowed_updates": params.get("allowed_updates"),
                "max_connections": _as_int(params.get("max_connections"), "max_connections", 40),
                "ip_address": params.get("ip_address"),
                "drop_pending_updates": bool(params.get("drop_pending_updates")),
                "has_certificate": "certificate" in params,
            }
            self._webhook_last_error = None
            self._poll_generation += 1  # a running long poll is ended by a webhook
            kick = self._claim_auto_delivery()
            self._changed()
        self._wake_pollers_in_loop()
        if kick:
            self._spawn(self._deliver_pending(auto=True))
        return _WithDescription(True, "Webhook was set")

    def _m_delete_webhook(self, params: JSON) -> _WithDescription:
        with self._lock:
            if params.get("drop_pending_updates"):
                self._pending.clear()
            had = bool(self._webhook.get("url"))
            self._webhook = {}
            self._changed()
        return _WithDescription(True, "Webhook was deleted" if had else "Webhook is already deleted")

    def _m_get_webhook_info(self, params: JSON) -> JSON:
        with self._lock:
            info: JSON = {
                "url": self._webhook.get("url", ""),
                "has_custom_certificate": bool(self._webhook.get("has_certificate")),
                "pending_update_count": len(self._pending),
            }
            if self._webhook.get("url"):
                info["max_connections"] = self._webhook.get("max_connections") or 40
                if self._webhook.get("ip_address"):
                    info["ip_address"] = self._webhook["ip_address"]
                if self._webhook.get("allowed_updates"):
                    info["allowed_updates"] = self._webhook["allowed_updates"]
            if self._webhook_last_error:
                info["last_error_date"], info["last_error_message"] = self._webhook_last_error
            return info

    def _check_text(self, text: Any, parse_mode: Any) -> str:
        if text is None or str(text).strip() == "":
            raise ApiError(400, "Bad Request: message text is empty")
        text = str(text)
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        if parse_mode:
            mode = str(parse_mode).lower()
            if mode not in ("markdown", "markdownv2", "html"):
                raise ApiError(400, "Bad Request: unsupported parse_mode")
            if self.validate_formatting and mode == "markdownv2":
                _check_markdown_v2(text)
            if self.validate_formatting and mode == "html":
                _check_html(text)
        return text

    @staticmethod
    def _inline_markup(markup: Any) -> Optional[JSON]:
        if isinstance(markup, dict) and isinstance(markup.get("inline_keyboard"), list):
            return copy.deepcopy(markup)
        return None

    def _m_send_message(self, params: JSON) -> JSON:
        with self._lock:
            chat = self._chat_for(params.get("chat_id"))
            if chat["id"] in self._blocked_chats:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            text = self._check_text(params.get("text"), params.get("parse_mode"))
            markup = params.get("reply_markup")
            if markup is not None and not isinstance(markup, dict):
                raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
            message: JSON = {
                "message_id": self._new_message_id(chat["id"]),
                "from": copy.deepcopy(self.bot_user),
                "chat": copy.deepcopy(chat),
                "date": int(time.time()),
                "text": text,
            }
            if params.get("entities"):
                message["entities"] = copy.deepcopy(params["entities"])
            inline = self._inline_markup(markup)
            if inline is not None:
                message["reply_markup"] = inline
            if isinstance(params.get("link_preview_options"), dict):
                message["link_preview_options"] = copy.deepcopy(params["link_preview_options"])
            reply_to = params.get("reply_to_message_id")
            reply_parameters = params.get("reply_parameters")
            if reply_to is None and isinstance(reply_parameters, dict):
                reply_to = reply_parameters.get("message_id")
            if reply_to is not None:
                target = self._messages.get((chat["id"], _as_int(reply_to, "reply_to_message_id")))
                if target is not None:
                    replied = copy.deepcopy(target)
                    replied.pop("reply_to_message", None)
                    message["reply_to_message"] = replied
                elif not (isinstance(reply_parameters, dict) and reply_parameters.get("allow_sending_without_reply")):
                    raise ApiError(400, "Bad Request: message to be replied not found")
            self._store_message(message)
            self._sent.append(copy.deepcopy(message))
            return copy.deepcopy(message)

    def _m_edit_message_text(self, params: JSON) -> Union[JSON, bool]:
        with self._lock:
            text = self._check_text(params.get("text"), params.get("parse_mode"))
            if params.get("inline_message_id"):
                self._edited.append({"inline_message_id": params["inline_message_id"], "text": text})
                return True
            message = self._message_for(params, action="edit")
            if message.get("from", {}).get("id") != self.bot_id:
                raise ApiError(400, "Bad Request: message can't be edited")
            markup = self._inline_markup(params.get("reply_markup"))
            if message.get("text") == text and message.get("reply_markup") == markup:
                raise ApiError(
                    400,
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message",
                )
            message["text"] = text
            if params.get("entities"):
                message["entities"] = copy.deepcopy(params["entities"])
            else:
                message.pop("entities", None)
            if markup is None:
                message.pop("reply_markup", None)
            else:
                message["reply_markup"] = markup
            message["edit_date"] = int(time.time())
            self._edited.append(copy.deepcopy(message))
            return copy.deepcopy(message)

    def _m_edit_message_reply_markup(self, params: JSON) -> Union[JSON, bool]:
        with self._lock:
            if params.get("inline_message_id"):
                self._edited.append(
                    {"inline_message_id": params["inline_message_id"], "reply_markup": params.get("reply_markup")}
                )
                return True
            message = self._message_for(params, action="edit")
            if message.get("from", {}).get("id") != self.bot_id:
                raise ApiError(400, "Bad Request: message can't be edited")
            markup = self._inline_markup(params.get("reply_markup"))
            if message.get("reply_markup") == markup:
                raise ApiError(
                    400,
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message",
                )
            if markup is None:
                message.pop("reply_markup", None)
            else:
                message["reply_markup"] = markup
            message["edit_date"] = int(time.time())
            self._edited.append(copy.deepcopy(message))
            return copy.deepcopy(message)

    def _m_delete_message(self, params: JSON) -> bool:
        with self._lock:
            message = self._message_for(params, action="delete")
            key = (message["chat"]["id"], message["message_id"])
            del self._messages[key]
            self._deleted.append(key)
            return True

    def _m_answer_callback_query(self, params: JSON) -> bool:
        with self._lock:
            query_id = str(params.get("callback_query_id") or "")
            if query_id not in self._callback_queries:
                raise ApiError(
                    400,
                    "Bad Request: query is too old and response timeout expired or query ID is invalid",
                )
            self._callback_answers.append(copy.deepcopy(params))
            return True

    def _m_send_chat_action(self, params: JSON) -> bool:
        with self._lock:
            chat = self._chat_for(params.get("chat_id"))
            action = params.get("action")
            if action not in _CHAT_ACTIONS:
                raise ApiError(400, "Bad Request: wrong parameter action in request")
            if chat["id"] in self._blocked_chats:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            self._chat_actions.append((chat["id"], action))
            return True

    @staticmethod
    def _commands_key(params: JSON) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def _m_set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: commands must be an array")
        for cmd in commands:
            if not isinstance(cmd, dict) or not _BOT_COMMAND_RE.match(str(cmd.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(cmd.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        with self._lock:
            self._commands[self._commands_key(params)] = copy.deepcopy(commands)
            return True

    def _m_get_my_commands(self, params: JSON) -> list[JSON]:
        with self._lock:
            return copy.deepcopy(self._commands.get(self._commands_key(params), []))

    def _m_delete_my_commands(self, params: JSON) -> bool:
        with self._lock:
            self._commands.pop(self._commands_key(params), None)
            return True

    def _m_set_chat_menu_button(self, params: JSON) -> bool:
        with self._lock:
            key = _as_int(params.get("chat_id"), "chat_id")
            button = params.get("menu_button") or {"type": "default"}
            if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
                raise ApiError(400, "Bad Request: wrong menu button type")
            self._menu_buttons[key] = copy.deepcopy(button)
            return True

    def _m_get_chat_menu_button(self, params: JSON) -> JSON:
        with self._lock:
            key = _as_int(params.get("chat_id"), "chat_id")
            button = self._menu_buttons.get(key) or self._menu_buttons.get(None) or {"type": "default"}
            return copy.deepcopy(button)

    def _m_get_chat(self, params: JSON) -> JSON:
        with self._lock:
            chat = copy.deepcopy(self._chat_for(params.get("chat_id"), create=False))
        chat.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        return chat

    def _m_get_chat_member(self, params: JSON) -> JSON:
        with self._lock:
            chat = self._chat_for(params.get("chat_id"), create=False)
            user_id = _as_int(params.get("user_id"), "user_id")
            if user_id is None:
                raise ApiError(400, "Bad Request: user_id is empty")
            override = self._chat_members.get((chat["id"], user_id))
            if override is not None:
                return copy.deepcopy(override)
            if user_id == self.bot_id:
                user = copy.deepcopy(self.bot_user)
            elif user_id in self._users:
                user = copy.deepcopy(self._users[user_id])
            elif chat["type"] == "private" and user_id != chat["id"]:
                raise ApiError(400, "Bad Request: user not found")
            else:
                user = {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
            return {"status": "member", "user": user}

    def _m_get_file(self, params: JSON) -> JSON:
        with self._lock:
            entry = self._files.get(str(params.get("file_id") or ""))
            if entry is None:
                raise ApiError(400, "Bad Request: invalid file_id")
            return {k: v for k, v in entry.items() if k != "content"}

    # ------------------------------------------------------------------ injecting updates

    def push_update(self, update: JSON) -> JSON:
        """Queue an arbitrary update (e.g. ``{"message": {...}}``, ``{"edited_message": {...}}``).

        A fresh ``update_id`` is always assigned. For message-like payloads the chat and
        sender are registered, ``message_id`` and ``date`` are filled in when missing
        (``edit_date`` too for edits) and the message is stored so the bot can reply to it.
        Returns the queued update (a copy)."""
        update = copy.deepcopy(update)
        update.pop("update_id", None)
        kind = _update_kind(update)
        payload = update[kind]
        with self._lock:
            if kind in _MESSAGE_KINDS:
                if not isinstance(payload.get("chat"), dict) or "id" not in payload["chat"]:
                    raise ValueError(f"{kind} needs a chat with an id")
                chat = self._register_chat(payload["chat"])
                payload["chat"] = copy.deepcopy(chat)
                if isinstance(payload.get("from"), dict):
                    self._users.setdefault(payload["from"]["id"], {}).update(copy.deepcopy(payload["from"]))
                payload.setdefault("date", int(time.time()))
                if kind.startswith("edited_"):
                    payload.setdefault("edit_date", int(time.time()))
                    if "message_id" not in payload:
                        raise ValueError(f"{kind} needs the message_id of the message it edits")
                else:
                    payload.setdefault("message_id", self._new_message_id(chat["id"]))
                self._store_message(copy.deepcopy(payload))
            elif kind == "callback_query":
                if "id" not in payload:
                    payload["id"] = str(secrets.randbits(63))
                self._callback_queries[str(payload["id"])] = copy.deepcopy(payload)
            update = {"update_id": self._next_update_id, kind: payload}
            self._next_update_id += 1
            self._pending.append(update)
            self._pushed.append(copy.deepcopy(update))
            kick = self._claim_auto_delivery()
            self._changed()
        self._notify_pollers()
        if kick:
            self._spawn(self._deliver_pending(auto=True))
        return copy.deepcopy(update)

    def push_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: Optional[int] = None,
        chat_type: str = "private",
        first_name: str = "Test",
        last_name: Optional[str] = None,
        username: Optional[str] = None,
        language_code: Optional[str] = "en",
        title: Optional[str] = None,
        reply_to_message_id: Optional[int] = None,
        entities: Optional[list[JSON]] = None,
    ) -> JSON:
        """Queue a text message from a user. In a private chat the user id defaults to the
        chat id; in groups to 1001. A leading ``/command`` gets its bot_command entity."""
        if user_id is None:
            user_id = chat_id if chat_type == "private" else 1001
        user = copy.deepcopy(
            self._user(user_id, first_name, last_name=last_name, username=username, language_code=language_code)
        )
        chat: JSON = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat.update({k: v for k, v in user.items() if k in ("first_name", "last_name", "username")})
        else:
            with self._lock:
                known = self._chats.get(chat_id, {})
            chat["title"] = title or known.get("title") or f"Chat {chat_id}"
        message: JSON = {"from": user, "chat": chat, "text": text}
        if entities is not None:
            message["entities"] = entities
        elif text.startswith("/"):
            command = text.split()[0] if text.split() else text
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        if reply_to_message_id is not None:
            with self._lock:
                target = self._messages.get((chat_id, reply_to_message_id))
            if target is None:
                raise KeyError(f"no message {reply_to_message_id} in chat {chat_id} to reply to")
            replied = copy.deepcopy(target)
            replied.pop("reply_to_message", None)
            message["reply_to_message"] = replied
        return self.push_update({"message": message})

    def push_callback_query(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: Optional[int] = None,
        first_name: str = "Test",
        username: Optional[str] = None,
    ) -> JSON:
        """Queue a button press on message ``message_id`` of chat ``chat_id`` (which must
        exist, e.g. sent by the bot). The query id is in ``update["callback_query"]["id"]``."""
        with self._lock:
            message = self._messages.get((chat_id, message_id))
            if message is None:
                raise KeyError(f"no message {message_id} in chat {chat_id}; press buttons on real messages")
            chat = self._chats[chat_id]
            if user_id is None:
                user_id = chat_id if chat["type"] == "private" else 1001
            user = copy.deepcopy(self._user(user_id, first_name, username=username))
            message = copy.deepcopy(message)
        query = {
            "id": str(secrets.randbits(63)),
            "from": user,
            "message": message,
            "chat_instance": str(abs(hash(("chat_instance", chat_id))) % 10**18),
            "data": data,
        }
        return self.push_update({"callback_query": query})

    def add_file(self, content: bytes, file_path: Optional[str] = None, *, file_id: Optional[str] = None) -> JSON:
        """Make ``content`` downloadable through getFile and the file endpoint. Returns
        ``{file_id, file_unique_id, file_size, file_path}`` to build media updates with."""
        file_id = file_id or "EMU-FILE-" + secrets.token_hex(8)
        entry = {
            "file_id": file_id,
            "file_unique_id": "U" + secrets.token_hex(6),
            "file_size": len(content),
            "file_path": file_path or f"documents/{file_id}.bin",
        }
        with self._lock:
            self._files[file_id] = dict(entry, content=bytes(content))
            self._file_paths[entry["file_path"]] = file_id
        return entry

    def block_chat(self, chat_id: int, blocked: bool = True) -> None:
        """Make sendMessage/sendChatAction to ``chat_id`` answer 403 "bot was blocked by the user"."""
        with self._lock:
            (self._blocked_chats.add if blocked else self._blocked_chats.discard)(chat_id)

    def set_chat_member(self, chat_id: int, user_id: int, member: JSON) -> None:
        """Override what getChatMember answers for that pair (a ChatMember JSON object)."""
        with self._lock:
            self._chat_members[(chat_id, user_id)] = copy.deepcopy(member)

    def register_method(self, name: str, handler: Callable[[JSON], Any]) -> None:
        """Emulate another method: ``handler(params)`` returns the result (or a coroutine)
        or raises ``ApiError``. It runs on the server thread."""
        self._handlers[name.lower()] = handler

    # ------------------------------------------------------------------ webhook delivery

    def _claim_auto_delivery(self) -> bool:
        """With the lock held: should the caller start an automatic delivery round?

        At most one automatic round runs at a time; a push during a round is picked up by
        that round, so every update is posted once per round, and a round stops at the
        first failure (the failed update stays pending and is retried first by the next
        round, i.e. on the next push, or by ``deliver_webhook()``)."""
        if not (self.webhook_auto_deliver and self._webhook.get("url") and self._pending):
            return False
        if self._auto_delivery_active:
            return False
        self._auto_delivery_active = True
        return True

    async def _deliver_pending(self, auto: bool = False) -> list[WebhookDelivery]:
        try:
            return await self._deliver_pending_inner(auto)
        finally:
            if auto:
                with self._lock:
                    self._auto_delivery_active = False

    async def _deliver_pending_inner(self, auto: bool) -> list[WebhookDelivery]:
        assert self._delivery_lock is not None
        results: list[WebhookDelivery] = []
        async with self._delivery_lock:
            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.webhook_timeout))
            while True:
                with self._lock:
                    url = self._webhook.get("url")
                    secret = self._webhook.get("secret_token")
                    allowed = self._webhook.get("allowed_updates") or None
                    update = next(
                        (
                            u
                            for u in self._pending
                            if (allowed is None and _update_kind(u) not in _NOT_DELIVERED_BY_DEFAULT)
                            or (allowed is not None and _update_kind(u) in allowed)
                        ),
                        None,
                    )
                    update = copy.deepcopy(update)
                    if not url or update is None:
                        if auto:  # atomically with the check, so no push is missed
                            self._auto_delivery_active = False
                        return results
                headers = {"Content-Type": "application/json"}
                if secret:
                    headers["X-Telegram-Bot-Api-Secret-Token"] = secret
                status: Optional[int] = None
                error: Optional[str] = None
                body = ""
                try:
                    async with self._session.post(url, data=json.dumps(update), headers=headers) as resp:
                        status = resp.status
                        body = (await resp.text(errors="replace"))[:2000]
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    error = f"{type(exc).__name__}: {exc}" or type(exc).__name__
                delivery = WebhookDelivery(
                    update_id=update["update_id"],
                    url=url,
                    secret_token=secret,
                    status=status,
                    error=error,
                    response_body=body,
                    at=time.time(),
                )
                with self._lock:
                    self._deliveries.append(delivery)
                    if delivery.ok:
                        self._pending = [u for u in self._pending if u["update_id"] != update["update_id"]]
                    else:
                        message = (
                            f"Wrong response from the webhook: {status}"
                            if status is not None
                            else f"Connection failed: {error}"
                        )
                        self._webhook_last_error = (int(time.time()), message)
                        if auto:  # the round ends here; a later push starts the next one
                            self._auto_delivery_active = False
                    self._changed()
                results.append(delivery)
                if not delivery.ok:  # like Telegram, keep order: retry later, not past it
                    return results

    def deliver_webhook(self, timeout: float = 10.0) -> list[WebhookDelivery]:
        """POST every pending update to the webhook, in order, stopping at the first
        failure (failed updates stay pending). Returns the deliveries made."""
        return self._run_in_server_loop(self._deliver_pending(), timeout)

    async def deliver_webhook_async(self) -> list[WebhookDelivery]:
        return await self._run_in_server_loop_async(self._deliver_pending())

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: Optional[int] = 1,
        times: int = 1,
        *,
        description: Optional[str] = None,
        parameters: Optional[JSON] = None,
        raw_body: Optional[bytes] = None,
    ) -> Fault:
        """Answer the next ``times`` calls of ``method`` ("*" = any) with an error.

        429 carries ``parameters.retry_after`` and "Too Many Requests: retry after N";
        other statuses a Telegram-like body with a default description (override with
        ``description``/``parameters``, or send a non-JSON ``raw_body`` like a proxy's
        HTML error page). Faults fire in the order they were scheduled."""
        fault = Fault(
            method=method,
            kind="error",
            times=times,
            status=status,
            retry_after=retry_after if status == 429 else None,
            description=description,
            parameters=parameters,
            raw_body=raw_body,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def drop_next(self, method: str, times: int = 1) -> Fault:
        """Close the connection of the next ``times`` calls of ``method`` without answering."""
        fault = Fault(method=method, kind="drop", times=times)
        with self._lock:
            self._faults.append(fault)
        return fault

    def delay(self, method: str, seconds: float) -> None:
        """Delay every call of ``method`` ("*" = any) by ``seconds`` (0 removes the delay)."""
        with self._lock:
            if seconds > 0:
                self._delays[method.lower()] = float(seconds)
            else:
                self._delays.pop(method.lower(), None)

    def clear_faults(self) -> None:
        """Drop every scheduled fault and delay (the fault log is kept)."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()

    @property
    def faults(self) -> list[tuple[str, Fault]]:
        """Faults that fired, in order: ``(method called, fault)``."""
        with self._lock:
            return list(self._fault_log)

    def fault_count(self, method: Optional[str] = None, kind: Optional[str] = None) -> int:
        with self._lock:
            return sum(
                1
                for called, fault in self._fault_log
                if (method is None or called.lower() == method.lower()) and (kind is None or fault.kind == kind)
            )

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.remaining > 0]

    # ------------------------------------------------------------------ inspection

    @property
    def calls(self) -> list[Call]:
        """Every API request received, in order, as ``(method, params)`` — faulted ones too."""
        with self._lock:
            return [r.call for r in self._records]

    @property
    def call_log(self) -> list[CallRecord]:
        """Like ``calls`` with the HTTP status, fault and response of each request."""
        with self._lock:
            return list(self._records)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [r.call for r in self._records if r.method.lower() == method.lower()]

    def sent_messages(self, chat_id: Optional[int] = None) -> list[JSON]:
        """Messages the bot sent (sendMessage), as they were when sent."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._sent if chat_id is None or m["chat"]["id"] == chat_id]

    def sent_texts(self, chat_id: Optional[int] = None) -> list[str]:
        return [m["text"] for m in self.sent_messages(chat_id)]

    def get_message(self, chat_id: int, message_id: int) -> Optional[JSON]:
        """The current state of a stored message (None if unknown or deleted)."""
        with self._lock:
            message = self._messages.get((chat_id, message_id))
            return copy.deepcopy(message) if message is not None else None

    @property
    def edited_messages(self) -> list[JSON]:
        """Messages as they were right after each successful edit, in order."""
        with self._lock:
            return copy.deepcopy(self._edited)

    @property
    def deleted_messages(self) -> list[tuple[int, int]]:
        with self._lock:
            return list(self._deleted)

    @property
    def callback_answers(self) -> list[JSON]:
        """The params of each successful answerCallbackQuery."""
        with self._lock:
            return copy.deepcopy(self._callback_answers)

    @property
    def chat_actions(self) -> list[tuple[Any, str]]:
        with self._lock:
            return list(self._chat_actions)

    @property
    def unknown_calls(self) -> list[Call]:
        """Calls of methods the emulator does not implement."""
        with self._lock:
            return list(self._unknown)

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed (getUpdates offset) or delivered (webhook)."""
        with self._lock:
            return copy.deepcopy(self._pending)

    @property
    def pushed_updates(self) -> list[JSON]:
        with self._lock:
            return copy.deepcopy(self._pushed)

    @property
    def webhook(self) -> JSON:
        """The current webhook settings ({} when none is set)."""
        with self._lock:
            return copy.deepcopy(self._webhook)

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        with self._lock:
            return list(self._deliveries)

    @property
    def commands(self) -> list[JSON]:
        """The default-scope, default-language command list set with setMyCommands."""
        with self._lock:
            return copy.deepcopy(self._commands.get((json.dumps({"type": "default"}), ""), []))

    @property
    def file_downloads(self) -> list[str]:
        with self._lock:
            return list(self._file_downloads)

    # ------------------------------------------------------------------ waiting

    @staticmethod
    def _call_matcher(predicate: Predicate, params: JSON) -> Callable[[Call], bool]:
        def matches(call: Call) -> bool:
            if isinstance(predicate, str):
                if call.method.lower() != predicate.lower():
                    return False
            elif not predicate(call):
                return False
            return all(call.params.get(k) == v for k, v in params.items())

        return matches

    def _describe_calls(self) -> str:
        with self._lock:
            tail = self._records[-15:]
        return "; ".join(f"{r.method}->{r.status if r.fault != 'drop' else 'dropped'}" for r in tail) or "none"

    def _find_call(self, matches: Callable[[Call], bool], since: int) -> Optional[Call]:
        for record in self._records[since:]:
            call = record.call
            if matches(call):
                return call
        return None

    def wait_until(self, condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
        """Block until ``condition()`` (evaluated under the emulator lock) is truthy; return it."""
        self._refuse_blocking_in_loop("wait_until", "wait_until_async")
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = condition()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(f"timed out after {timeout}s waiting for {what}; last calls: {self._describe_calls()}")
                self._cond.wait(remaining)

    async def wait_until_async(self, condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        event = asyncio.Event()
        entry = (loop, event)
        with self._lock:
            self._async_waiters.append(entry)
        try:
            while True:
                with self._lock:
                    event.clear()
                    value = condition()
                if value:
                    return value
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise WaitTimeout(f"timed out after {timeout}s waiting for {what}; last calls: {self._describe_calls()}")
                try:
                    await asyncio.wait_for(event.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
        finally:
            with self._lock:
                self._async_waiters.remove(entry)

    def wait_for(self, predicate: Predicate, timeout: float = 5.0, *, since: int = 0, **params: Any) -> Call:
        """Block until a call matching ``predicate`` is recorded and return it.

        ``predicate`` is a method name or a function of ``Call``; keyword arguments must
        equal the call's params (``wait_for("sendMessage", chat_id=5)``). Only calls with
        index >= ``since`` are considered (use ``len(emu.calls)`` to skip earlier ones).
        Calls answered with an injected fault count too."""
        self._refuse_blocking_in_loop("wait_for", "wait_for_async")
        matches = self._call_matcher(predicate, params)
        return self.wait_until(lambda: self._find_call(matches, since), timeout, what=f"call {predicate!r} {params or ''}")

    async def wait_for_async(self, predicate: Predicate, timeout: float = 5.0, *, since: int = 0, **params: Any) -> Call:
        matches = self._call_matcher(predicate, params)
        return await self.wait_until_async(
            lambda: self._find_call(matches, since), timeout, what=f"call {predicate!r} {params or ''}"
        )

    def wait_for_delivery(self, update_id: Optional[int] = None, timeout: float = 5.0) -> WebhookDelivery:
        """Block until a webhook delivery (of ``update_id``, if given) is recorded."""
        self._refuse_blocking_in_loop("wait_for_delivery", "wait_for_delivery_async")
        return self.wait_until(lambda: self._find_delivery(update_id), timeout, what=f"webhook delivery {update_id}")

    async def wait_for_delivery_async(self, update_id: Optional[int] = None, timeout: float = 5.0) -> WebhookDelivery:
        return await self.wait_until_async(
            lambda: self._find_delivery(update_id), timeout, what=f"webhook delivery {update_id}"
        )

    def _find_delivery(self, update_id: Optional[int]) -> Optional[WebhookDelivery]:
        for delivery in self._deliveries:
            if update_id is None or delivery.update_id == update_id:
                return delivery
        return None

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "stopped"
        return f"<TelegramEmulator {where} calls={len(self._records)} pending={len(self._pending)}>"
