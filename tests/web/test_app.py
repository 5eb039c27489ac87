"""The chat page's aiohttp app: routes, config, security headers, self-hosting, the CLI.

pytest-asyncio / pytest-aiohttp are not installed: each test drives aiohttp's TestClient with
asyncio.run().
"""
from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot import settings as bot_settings
from bot.web import app as web_app
from bot.web.app import STATIC_DIR, create_app

ROOT = Path(__file__).resolve().parents[2]
RASA = "http://127.0.0.1:5005"


@pytest.fixture(scope="module")
def clinic_settings(tmp_path_factory):
    """A clinic unlike the real one, so every value shown is proved to come from the settings."""
    path = tmp_path_factory.mktemp("clinic") / "clinic.yml"
    path.write_text(
        "clinic:\n"
        "  name: Test & <Sons> Clinic\n"
        '  phone: "01632 960 001"\n'
        '  out_of_hours_phone: "01632 960 002"\n'
        '  hours: "Tuesdays only"\n'
        '  emergency_number: "112"\n', encoding="utf-8")
    return bot_settings.load(path)


def fetch(paths, rasa_url=RASA, settings=None, method="GET"):
    """{path: (status, headers, body bytes)} from a fresh app."""
    async def go():
        app = create_app(rasa_url, settings)
        async with TestClient(TestServer(app)) as client:
            out = {}
            for path in paths:
                resp = await client.request(method, path, allow_redirects=False)
                out[path] = (resp.status, resp.headers, await resp.read())
            return out
    return asyncio.run(go())


def csp_directives(header: str) -> dict:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_the_page_is_html_with_a_strict_csp(clinic_settings):
    status, headers, body = fetch(["/"], settings=clinic_settings)["/"]
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    csp = csp_directives(headers["Content-Security-Policy"])
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:"]
    assert csp["connect-src"] == ["'self'"]          # the chat's socket is this server's; never Rasa's
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
    assert "'unsafe-eval'" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    page = body.decode()
    assert "<main" in page and 'role="log"' in page and 'role="alert"' in page
    # the clinic's details are filled in, escaped, with tel: links of digits only
    assert "Test &amp; &lt;Sons&gt; Clinic" in page and "<Sons>" not in page
    assert 'href="tel:112"' in page and 'href="tel:01632960001"' in page and 'href="tel:01632960002"' in page
    assert "{{" not in page


def test_every_response_has_the_security_headers():
    paths = ["/", "/healthz", "/config.json", "/static/chat.js", "/static/chat.css",
             "/static/vendor/socket.io.min.js", "/no-such-page", "/static/no-such-file.js"]
    for path, (status, headers, _) in fetch(paths).items():
        assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), path
        assert headers.get("X-Content-Type-Options") == "nosniff", path
        assert headers.get("Referrer-Policy") == "no-referrer", path
    assert fetch(["/no-such-page"])["/no-such-page"][0] == 404


def test_the_page_is_never_sent_to_rasa_wherever_rasa_is():
    got = fetch(["/", "/config.json"], rasa_url="https://chat.example.org/rasa/")
    csp = csp_directives(got["/"][1]["Content-Security-Policy"])
    assert csp["connect-src"] == ["'self'"]
    config = json.loads(got["/config.json"][2])
    assert config["rasa_url"] == "" and config["socketio_path"] == "/socket.io"


@pytest.mark.parametrize("bad", ["", "localhost:5005", "ftp://host", "http://", "javascript:alert(1)",
                                 "http://host/?q=1", "http://user:pw@host"])
def test_a_bad_rasa_url_is_refused(bad):
    with pytest.raises(ValueError):
        create_app(bad)


def test_config_json_has_rasa_and_the_clinics_numbers(clinic_settings):
    status, headers, body = fetch(["/config.json"], settings=clinic_settings)["/config.json"]
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {
        "rasa_url": "",
        "socketio_path": "/socket.io",
        "clinic": {"name": "Test & <Sons> Clinic", "phone": "01632 960 001",
                   "out_of_hours_phone": "01632 960 002", "hours": "Tuesdays only",
                   "emergency_number": "112"},
    }


def test_config_json_defaults_to_clinic_yml():
    clinic = bot_settings.get().clinic
    config = json.loads(fetch(["/config.json"])["/config.json"][2])
    assert config["clinic"]["phone"] == clinic.phone
    assert config["clinic"]["out_of_hours_phone"] == clinic.out_of_hours_phone
    assert config["clinic"]["emergency_number"] == clinic.emergency_number


def test_healthz():
    status, _, body = fetch(["/healthz"])["/healthz"]
    assert (status, body) == (200, b"ok")


def test_static_files_are_served_with_their_types():
    got = fetch(["/static/chat.js", "/static/chat.css", "/static/vendor/socket.io.min.js",
                 "/static/index.html"])
    status, headers, body = got["/static/chat.js"]
    assert status == 200 and "javascript" in headers["Content-Type"] and b"session_request" in body
    status, headers, body = got["/static/chat.css"]
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    status, headers, body = got["/static/vendor/socket.io.min.js"]
    assert status == 200 and "javascript" in headers["Content-Type"]
    assert re.match(rb"/\*!\s*\* Socket\.IO v4\.\d+\.\d+", body)
    assert got["/static/index.html"][0] == 200


def test_no_directory_listing_and_no_escape_from_static():
    got = fetch(["/static/", "/static/vendor/", "/static/../app.py", "/static/%2e%2e/app.py"])
    for path, (status, _, body) in got.items():
        assert status in (403, 404), path
        assert b"create_app" not in body, path


def test_the_vendored_client_has_its_licence_and_readme():
    vendor = STATIC_DIR / "vendor"
    head = (vendor / "socket.io.min.js").read_text(encoding="utf-8")[:200]
    version = re.search(r"Socket\.IO v(4\.\d+\.\d+)", head).group(1)
    assert "MIT License" in (vendor / "LICENSE").read_text(encoding="utf-8")
    readme = (vendor / "README.md").read_text(encoding="utf-8")
    assert f"socket.io-client {version}" in readme and "npm pack" in readme
    assert not (vendor / "node_modules").exists() and not (ROOT / "node_modules").exists()
    assert not list(ROOT.glob("package*.json"))


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls, self.inline_scripts, self.inline_styles, self.handlers = [], 0, 0, []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            if attrs.get(name) is not None:
                self.urls.append(attrs[name])
        if tag == "script":
            self._in_script = True
            if not attrs.get("src"):
                self.inline_scripts += 1
        if tag == "style" or "style" in attrs:
            self.inline_styles += 1
        self.handlers += [n for n in attrs if n.startswith("on")]

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts += 1


def test_the_page_references_no_other_host():
    html_text = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    refs = _Refs()
    refs.feed(html_text)
    for url in refs.urls:
        assert url.startswith(("/", "#", "tel:", "data:")) and not url.startswith("//"), url
    assert "/static/vendor/socket.io.min.js" in refs.urls and "/static/chat.js" in refs.urls
    # the CSP forbids inline code: there is none
    assert refs.inline_scripts == 0 and refs.inline_styles == 0 and refs.handlers == []
    for name in ("index.html", "chat.js", "chat.css"):
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        assert re.findall(r"(?:https?|wss?):", text) == [], name
        assert not re.search(r"@import|url\(\s*['\"]?(?!data:)[a-z]+:", text), name
    css = (STATIC_DIR / "chat.css").read_text(encoding="utf-8")
    assert "@font-face" not in css


def test_chat_js_never_parses_text_as_html():
    js = (STATIC_DIR / "chat.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "createContextualFragment", "DOMParser"):
        assert sink not in js, sink


def test_the_staff_dashboard_is_mounted_and_asks_for_a_login():
    status, headers, body = fetch(["/staff/"])["/staff/"][:3]
    assert status in (302, 303, 200)
    assert "login" in (headers.get("Location", "") + str(body)).lower()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serves_the_page():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "web", "--port", str(port),
                             "--rasa-url", "http://localhost:5005", "--host", "127.0.0.1"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert (r.status, r.read()) == (200, b"ok")
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "python -m bot web did not come up"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config.json", timeout=2) as r:
            assert json.load(r)["rasa_url"] == ""        # the page never talks to Rasa
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


def test_cli_refuses_a_bad_rasa_url():
    p = subprocess.run([sys.executable, "-m", "bot", "web", "--rasa-url", "localhost:5005"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--rasa-url" in p.stderr
