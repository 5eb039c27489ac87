"""Rasa's HTTP API and the action server are private: loopback only, credentials required.

Against the real processes, started as `make run` starts them (`python -m bot rasa`, `python -m bot
actions`): an attacker on this machine without the credentials reads no tracker, writes no slot,
pushes no message and deletes no model; one elsewhere cannot connect at all.
"""
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bot.service_auth import rasa_api_headers

pytestmark = pytest.mark.rasa


def status(url, method="GET", body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def listening_addresses(port):
    """Local addresses of the IPv4/IPv6 sockets listening on port (from /proc/net/tcp*)."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.rsplit(":", 1)
            if state == "0A" and int(p, 16) == port:     # 0A: LISTEN
                found.add(addr)
    return found


def test_the_api_refuses_every_call_without_the_jwt(live_bot):
    sender = live_bot.new_sender()
    live_bot.send(sender, "hello")
    base = f"{live_bot.rasa_url}/conversations/{sender}"
    assert status(f"{base}/tracker") == 401
    assert status(f"{base}/tracker/events", "POST",
                  {"event": "slot", "name": "clinic_phone", "value": "0000 forged"}) == 401
    assert status(f"{base}/trigger_intent?output_channel=latest", "POST",
                  {"name": "EXTERNAL_unacknowledged"}) == 401
    assert status(f"{live_bot.rasa_url}/model", "DELETE") == 401
    # the secret as a URL token (it would end up in logs) is not a credential either
    assert status(f"{base}/tracker?token={live_bot.rasa_secret}") == 401
    # a JWT signed with another secret is refused
    assert status(f"{base}/tracker", headers=rasa_api_headers("not-the-secret")) == 401
    # our own services, with the header, are served; the model is still there
    assert status(f"{base}/tracker", headers=rasa_api_headers(live_bot.rasa_secret)) == 200
    assert live_bot.triage(live_bot.send(sender, "I fainted and I am bleeding heavily"))["level"] == "emergency"


def test_the_action_server_refuses_calls_without_the_secret(live_bot):
    call = {"next_action": "action_triage", "sender_id": "forged",
            "tracker": {"sender_id": "forged", "slots": {}, "latest_message": {"text": "I fainted"},
                        "events": [], "paused": False, "followup_action": None, "active_loop": {},
                        "latest_action_name": "action_listen"},
            "domain": {}, "version": "3.6.21"}
    url = f"{live_bot.action_url}/webhook"
    assert status(url, "POST", call) == 401
    assert status(url, "POST", call, {"Authorization": "Bearer wrong"}) == 401
    assert status(f"{live_bot.action_url}/actions") == 401
    assert status(f"{live_bot.action_url}/health") == 200
    # with the secret, the same call reaches the actions (and is answered, not refused)
    assert status(url, "POST", call, {"Authorization": f"Bearer {live_bot.action_secret}"}) != 401


def test_rasa_and_the_action_server_listen_on_loopback_only(live_bot):
    for url in (live_bot.rasa_url, live_bot.action_url):
        port = int(url.rsplit(":", 1)[1])
        addresses = listening_addresses(port)
        assert addresses, f"nothing listens on {port}"
        # 0100007F is 127.0.0.1 in /proc's byte order; never 00000000 (every interface)
        assert addresses <= {"0100007F"}, (port, addresses)


def test_no_connection_from_another_interface(live_bot):
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))       # picks the outward interface; sends nothing
        outward = probe.getsockname()[0]
    except OSError:
        outward = None
    finally:
        probe.close()
    if not outward or outward.startswith("127."):
        pytest.skip("this machine has no address but loopback")
    for url in (live_bot.rasa_url, live_bot.action_url):
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(OSError):
            socket.create_connection((outward, port), timeout=3).close()


def test_rasas_tracker_store_errors_hide_the_patients_words():
    """A SQL error in Rasa's own tracker store names the statement, never its bound parameters."""
    import sqlalchemy

    from bot.private_servers import hide_sql_parameters

    original = sqlalchemy.create_engine
    try:
        hide_sql_parameters()
        engine = sqlalchemy.create_engine("sqlite://")
        with engine.connect() as c:
            c.execute(sqlalchemy.text("create table events (data text not null)"))
            with pytest.raises(sqlalchemy.exc.IntegrityError) as err:
                c.execute(sqlalchemy.text("insert into events values (:d), (NULL)"), {"d": "quokka fainted"})
        assert "quokka" not in str(err.value) and "hidden" in str(err.value).lower()
    finally:
        sqlalchemy.create_engine = original


def test_a_secret_that_starts_with_a_dash_still_reaches_rasa(tmp_path, monkeypatch):
    """token_urlsafe can start with '-': argparse must not read the secret as an option."""
    from rasa.cli.arguments.run import add_server_arguments
    import argparse

    from bot.private_servers import rasa_argv

    monkeypatch.setenv("RASA_AUTH_TOKEN", "-starts-with-a-dash")
    argv = rasa_argv("m.tar.gz", 5005, "e.yml", [], tmp_path)
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    known, _ = parser.parse_known_args(argv[1:])
    assert known.jwt_secret == "-starts-with-a-dash"
