"""The Bot API client and the mapping of its errors to the outbox's retry classes."""

from __future__ import annotations

import warnings
from typing import Any

from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest

from bot.escalation.relay import PermanentError, RetryLater, TransientError


def make_bot(token: str, base_url: str | None = None) -> ExtBot:
    """An ExtBot with PTB's rate limiter (it spaces our sends; 429s are raised, and the outbox
    honours their retry_after). base_url as for Telegram's self-hosted Bot API server,
    e.g. http://127.0.0.1:8081/bot (the token is appended)."""
    kwargs: dict[str, Any] = {}
    if base_url:
        kwargs["base_url"] = base_url
        kwargs["base_file_url"] = base_url.rstrip("/").rsplit("/", 1)[0] + "/file/bot"
    return ExtBot(
        token,
        rate_limiter=AIORateLimiter(max_retries=0),
        request=HTTPXRequest(connect_timeout=10, read_timeout=20, write_timeout=20),
        **kwargs,
    )


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)


def classify(exc: Exception) -> Exception:
    """The outbox error class for a PTB exception."""
    if isinstance(exc, RetryAfter):
        return RetryLater(retry_after_seconds(exc))
    if isinstance(exc, (BadRequest, Forbidden, InvalidToken, ChatMigrated)):
        return PermanentError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, (TimedOut, NetworkError)):
        return TransientError(f"{type(exc).__name__}: {exc}")
    return TransientError(f"{type(exc).__name__}: {exc}")
