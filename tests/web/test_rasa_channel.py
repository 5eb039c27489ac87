"""The chat page relies on Rasa's socket.io channel putting the browser's socket into the room
named after its session id (session_persistence: true): Rasa sends every bot_uttered to that room.

Rasa 3.6's SocketIOInput calls `sio.enter_room(sid, session_id)` without `await`; with the
installed python-socketio 5.18, AsyncServer.enter_room is a coroutine, so the call does nothing
(RuntimeWarning: coroutine 'AsyncServer.enter_room' was never awaited) and every answer to the web
page is lost. bot/channels/socketio.py replaces the session_request handler with one that awaits
enter_room; this test keeps it that way.
"""
from __future__ import annotations

import asyncio
import gc
import warnings

import pytest


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_session_request_puts_the_socket_in_its_sessions_room():
    from bot.channels.socketio import SocketIOChannel

    channel = SocketIOChannel.from_credentials({"session_persistence": True})

    async def on_new_message(message):
        pass

    channel.blueprint(on_new_message)
    sio = channel.sio

    async def go():
        connect = sio.manager.connect("eio-sid-1", "/")
        sid = await connect if asyncio.iscoroutine(connect) else connect
        emitted = []

        async def emit(event, data=None, room=None, **kwargs):
            emitted.append((event, data, room))

        sio.emit = emit
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            await sio.handlers["/"]["session_request"](sid, {"session_id": "session-1"})
            gc.collect()
        return sid, emitted, dict(sio.manager.rooms["/"].get("session-1") or {})

    sid, emitted, room = asyncio.run(go())
    assert ("session_confirm", "session-1", sid) in emitted
    assert sid in room, "the socket is not in its session's room: Rasa's answers go nowhere"
