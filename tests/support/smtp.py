"""A local SMTP server for the alert-email tests (aiosmtpd), restartable on the same port."""
from __future__ import annotations

import socket
from email import message_from_bytes, policy
from typing import Optional

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """What a local SMTP server received (aiosmtpd's handler protocol)."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    def subjects(self):
        return [str(m["Subject"]) for m in self.messages]


class SmtpServer:
    """aiosmtpd on a fixed loopback port, so it can be stopped and started again (a restart)."""

    def __init__(self, port: Optional[int] = None):
        self.port = port or free_port()
        self.inbox = Inbox()
        self.controller = None

    def start(self):
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
