"""Alert emails to the clinic: the reference, the level, the time and the dashboard link.

Email is not a place for health data: no symptom, no patient words, no conversation id; the nurse
opens the dashboard (behind its login) for those. Each email's Message-ID is derived from the
escalation and the alert, so a mail client shows a re-delivery after a crash as the same message.
smtplib blocks, so it runs in a thread; SMTP 4xx and network errors are retried by the outbox,
5xx are permanent (dead-lettered and shown on the dashboard).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from bot.escalation.relay import AlertView, PermanentError, TransientError
from bot.settings import Smtp

KIND_WORDS = {"alert": "New", "realert": "Level raised", "resend": "Not yet acknowledged"}
TIMEOUT = 20.0


def alert_subject(view: AlertView, clinic: str) -> str:
    return f"[{view.level.upper()}] {KIND_WORDS.get(view.kind, 'Alert')}: escalation {view.id} ({clinic})"


def alert_body(view: AlertView, dashboard_url: str) -> str:
    return "\n".join(
        [
            f"{KIND_WORDS.get(view.kind, 'Alert')} {view.level} escalation from the HSG aftercare assistant.",
            "",
            f"Reference: {view.id}",
            f"Level:     {view.level}",
            f"Raised:    {view.created_at:%Y-%m-%d %H:%M} UTC",
            "",
            f"Open the dashboard to read it, acknowledge it and call the patient: {dashboard_url}",
            "",
            "This email holds no health information by design; the details are on the dashboard.",
        ]
    )


def digest_body(views: list[AlertView], dashboard_url: str) -> str:
    refs = "\n".join(f"  {v.id}  {v.level}  {v.created_at:%H:%M} UTC" for v in views)
    return (
        f"{len(views)} new urgent escalations arrived faster than one email each.\n\n{refs}\n\n"
        f"Open the dashboard to acknowledge them: {dashboard_url}\n"
    )


class EmailNotifier:
    target_name = "email"

    def __init__(self, smtp: Smtp, clinic_name: str, dashboard_url: str, max_per_minute: int | None = 10):
        self.smtp = smtp
        self.clinic = clinic_name
        self.dashboard_url = dashboard_url
        self.max_per_minute = max_per_minute

    async def send_alert(self, view: AlertView) -> dict[str, Any]:
        msg_id = f"<{view.id}.{view.kind}.{view.level}.{view.resend_count}@hsg-aftercare>"
        msg = self._message(alert_subject(view, self.clinic), alert_body(view, self.dashboard_url), msg_id)
        await asyncio.to_thread(self._send, msg)
        return {"message_id": msg_id}

    async def update_alert(self, ref: dict[str, Any], view: AlertView) -> None:
        """Acknowledgements are not emailed: the dashboard and the staff chat show them."""
        return None

    async def send_digest(self, views: list[AlertView]) -> dict[str, Any]:
        msg_id = make_msgid(domain="hsg-aftercare")
        msg = self._message(
            f"[URGENT] {len(views)} new escalations ({self.clinic})", digest_body(views, self.dashboard_url), msg_id
        )
        await asyncio.to_thread(self._send, msg)
        return {"digest": len(views), "message_id": msg_id}

    def _message(self, subject: str, body: str, msg_id: str) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"], msg["From"], msg["To"] = subject, self.smtp.sender, ", ".join(self.smtp.recipients)
        msg["Message-ID"], msg["Date"] = msg_id, format_datetime(dt.datetime.now(dt.timezone.utc))
        msg.set_content(body)
        return msg

    def _send(self, msg: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.smtp.host or "", self.smtp.port, timeout=TIMEOUT) as client:
                if self.smtp.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.smtp.user and self.smtp.password:
                    client.login(self.smtp.user, self.smtp.password)
                client.send_message(msg)
        except smtplib.SMTPRecipientsRefused as e:
            raise PermanentError(f"recipients refused: {list(e.recipients)[:3]}") from e
        except smtplib.SMTPResponseException as e:
            if 400 <= e.smtp_code < 500:
                raise TransientError(f"SMTP {e.smtp_code}") from e
            raise PermanentError(f"SMTP {e.smtp_code}: {e.smtp_error!r}"[:300]) from e
        except (smtplib.SMTPException, OSError) as e:
            raise TransientError(f"{type(e).__name__}: {e}") from e
