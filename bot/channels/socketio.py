"""Rasa's socket.io channel, with custom payloads that actually reach the browser.

Two fixes to Rasa 3.6's channel, which python-socketio 5.18 breaks:
* its session_request handler calls the now-async `sio.enter_room` without awaiting it, so the
  browser never joins its session's room and no answer ever reaches the page; this one awaits it;
* its SocketIOOutput.send_custom_json calls `sio.emit(event, **json_message)`, which turns
the payload's keys into keyword arguments of emit (so {"triage": ...} raises a TypeError and is
lost). This output sends `{"custom": payload}` as the event's data, the same shape the REST channel
returns, so the web page and the tests read one format. Everything else is Rasa's channel.

Events (with `session_persistence: true`): the page emits `session_request` {session_id} and gets
`session_confirm` <id>; it emits `user_uttered` {message, session_id}; it receives `bot_uttered`
{text, quick_replies?} and {custom: {triage: {...}}}.
"""
from __future__ import annotations

import uuid
from typing import Any, Dict, Text

from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput


class TriageSocketIOOutput(SocketIOOutput):
    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        await self._send_message(recipient_id, {"custom": json_message})


class SocketIOChannel(SocketIOInput):
    @classmethod
    def name(cls) -> Text:
        return "socketio"

    def get_output_channel(self):
        channel = super().get_output_channel()
        return TriageSocketIOOutput(channel.sio, channel.bot_message_evt) if channel else None

    def blueprint(self, on_new_message):
        async def wrapped(message):
            if isinstance(message.output_channel, SocketIOOutput) and \
                    not isinstance(message.output_channel, TriageSocketIOOutput):
                message.output_channel = TriageSocketIOOutput(message.output_channel.sio,
                                                              message.output_channel.bot_message_evt)
            await on_new_message(message)
        bp = super().blueprint(wrapped)
        sio, persistence = self.sio, self.session_persistence

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: Text, data: Any) -> None:
            session_id = (data or {}).get("session_id") if isinstance(data, dict) else None
            session_id = session_id or uuid.uuid4().hex
            if persistence:
                await sio.enter_room(sid, session_id)
            await sio.emit("session_confirm", session_id, room=sid)

        return bp
