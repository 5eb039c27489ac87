"""The nurses' dashboard: an aiohttp sub-application mounted under /staff/.

    app.add_subapp("/staff/", create_dashboard(escalations, db.sessions))

Routes (relative to the mount point): GET / (the queue), GET /escalations/{id}, POST
/escalations/{id}/acknowledge, POST /escalations/{id}/resolve, GET+POST /login, POST /logout,
GET /static/dashboard.css. Everything except the login page and the stylesheet needs a valid
session; without one, the answer is a redirect to the login page that carries nothing else.
Every POST needs the CSRF token of its session (of the login form, for the login) and a
same-origin request. Every view and action is audited. Pages are server-rendered (Jinja2,
autoescaped); one script of our own (static/alarm.js) listens to GET /events (server-sent
events) to show new escalations, raise an audible alarm the nurse can silence and put the count
in the tab title; without it the page still reloads itself. The Content-Security-Policy forbids
anything not from here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web
from sqlalchemy.orm import sessionmaker

from bot import patients
from bot.escalation.service import Escalations
from bot.staff import roster as roster_mod
from bot.staff import sessions as staff_sessions
from bot.staff.sessions import CurrentStaff
from bot.staff.throttle import DEFAULT_LIMITS, Limits, LoginThrottle
from bot.store.models import utcnow

from . import auth, views

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

SESSION_COOKIE = "hsg_staff_session"
LOGIN_COOKIE = "hsg_staff_login"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 64 * 1024
MAX_NOTE = 2000
LIVE_KEEPALIVE = 15.0  # seconds between repeats of an unchanged live state
PASSWORD_CHECKS_AT_ONCE = 4  # scrypt takes 16 MB and ~50 ms each
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
ID_PATTERN = r"[A-Za-z0-9-]{1,16}"

CSP = (
    "default-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
PUBLIC_ROUTES = {"root", "login", "login_post", "static"}

LOGIN_MESSAGES = {
    "ended": "Your session ended. Please sign in again.",
    "out": "You have signed out.",
}
LOGIN_FAILED = "That name and password did not match. Check them and try again."
LOGIN_LOCKED = "Too many attempts. Wait {wait} and try again, or ask the clinic's administrator to check your account."
LOGIN_INCOMPLETE = "Enter your name and your password."
RESULTS = {
    "acknowledged": ("ok", "Acknowledged: you are handling this escalation."),
    "already_acknowledged": ("info", "It had already been acknowledged."),
    "resolved": ("ok", "Resolved, with your note."),
    "already_resolved": ("info", "It had already been resolved."),
    "refused": ("error", "That was refused: only active staff on the roster can do that."),
    "note_needed": ("error", "Write a short note saying what was done, then press Resolve."),
    "forgotten": ("ok", "The patient's contact details and consent were deleted; this record stays."),
}

STAFF_KEY = "hsg_dashboard_staff"


def _client(request: web.Request, trust_forwarded_for: bool = False) -> str | None:
    """The client's address; behind a reverse proxy that sets X-Forwarded-For (and only then,
    trust_forwarded_for), the address the proxy saw, which is the last entry."""
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return last[:64]
    return request.remote


def _wait_words(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} seconds"
    return f"{round(seconds / 60)} minutes"


def _origin_problem(request: web.Request, secure: bool) -> str | None:
    """Why this POST does not look like it came from a page of this site (None if it does).

    Fetch metadata (Sec-Fetch-Site, which pages cannot forge) decides when the browser sends it.
    Browsers send `Origin: null` on same-origin form posts from pages served with
    `Referrer-Policy: no-referrer` (as these are), so a null Origin is accepted only when fetch
    metadata says the request is same-origin. Any other Origin must be this host.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site {site[:20]}"
    origin = request.headers.get("Origin")
    if origin is None:
        return None  # not sent by older browsers; the token still has to match
    if origin == "null":
        return None if site == "same-origin" else "null Origin without fetch metadata"
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https"):
        return "unusable Origin"
    if parts.netloc.lower() != (request.host or "").lower():
        return "cross-site Origin"
    if secure and parts.scheme != "https":
        return "Origin not https"
    return None


def _tokens_match(given: Any, expected: str | None) -> bool:
    if not isinstance(given, str) or not given or not expected:
        hmac.compare_digest(b"x" * 43, b"y" * 43)
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


class Dashboard:
    def __init__(
        self,
        escalations: Escalations,
        sessions: sessionmaker,
        idle: dt.timedelta,
        absolute: dt.timedelta,
        cookie_secure: bool,
        clock: Callable[[], dt.datetime],
        formatter: views.Formatter,
        limits: Limits = DEFAULT_LIMITS,
        trust_forwarded_for: bool = False,
        live_every: float = 2.0,
    ):
        self.escalations = escalations
        self.sessions = sessions
        self.idle = idle
        self.absolute = absolute
        self.cookie_secure = cookie_secure
        self.clock = clock
        self.fmt = formatter
        self.throttle = LoginThrottle(sessions, clock, limits)
        self.trust_forwarded_for = trust_forwarded_for
        self.live_every = live_every
        self._stopping: asyncio.Event | None = None
        self._password_checks: asyncio.Semaphore | None = None
        self.app = web.Application(middlewares=[self.middleware])
        self.jinja = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.jinja.globals.update(url=self.url, idle_minutes=f"{idle.total_seconds() / 60:g}")

    # -- plumbing -------------------------------------------------------------------------------
    def url(self, name: str, **parts: str) -> str:
        """A path under wherever the dashboard is mounted (e.g. /staff/escalations/H-ABC234)."""
        if name == "static":
            return str(self.app.router["static"].url_for(filename=parts["filename"]))
        return str(self.app.router[name].url_for(**parts))

    @property
    def cookie_path(self) -> str:
        return self.url("queue")

    def render(self, template: str, status: int = 200, **context: Any) -> web.Response:
        context.setdefault("staff", None)
        html = self.jinja.get_template(template).render(**context)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    def error_page(self, status: int, title: str, message: str, staff: CurrentStaff | None = None) -> web.Response:
        return self.render("error.html", status=status, title=title, message=message, staff=staff)

    def set_session_cookie(self, response: web.StreamResponse, token: str) -> None:
        response.set_cookie(
            SESSION_COOKIE, token, path=self.cookie_path, httponly=True, samesite="Strict", secure=self.cookie_secure
        )

    def clear_cookie(self, response: web.StreamResponse, name: str) -> None:
        response.set_cookie(
            name,
            "",
            path=self.cookie_path,
            max_age=0,
            expires="Thu, 01 Jan 1970 00:00:00 GMT",
            httponly=True,
            samesite="Strict",
            secure=self.cookie_secure,
        )

    async def db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Blocking SQLAlchemy work, off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def form(self, request: web.Request):
        if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_FORM_BYTES, actual_size=request.content_length)
        return await request.post()

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        # Runs after the parent app's hook: these headers win over anything it set by default.
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        route = request.match_info.route if request.match_info is not None else None
        static = route is not None and route.name == "static"
        response.headers["Cache-Control"] = "no-cache" if static else "no-store"

    @property
    def stopping(self) -> asyncio.Event:
        if self._stopping is None:
            self._stopping = asyncio.Event()
        return self._stopping

    async def on_shutdown(self, _app: web.Application) -> None:
        """Live feeds end when the server stops (browsers reconnect to the next one)."""
        self.stopping.set()

    # -- sessions and CSRF ----------------------------------------------------------------------
    async def current_staff(self, request: web.Request, touch: bool = True):
        token = request.cookies.get(SESSION_COOKIE)
        if not token or not TOKEN_RE.match(token):
            return None, False
        return await self.db(
            staff_sessions.load_session,
            self.sessions,
            staff_sessions.token_hash(token),
            self.clock(),
            self.idle,
            self.absolute,
            touch,
        )

    async def refuse_csrf(self, request: web.Request, staff: CurrentStaff | None, reason: str) -> web.Response:
        await self.db(
            auth.record,
            self.sessions,
            "csrf_refused",
            staff,
            path=request.path[:200],
            method=request.method,
            reason=reason,
            origin=(request.headers.get("Origin") or "")[:120] or None,
            client=_client(request, self.trust_forwarded_for),
        )
        return self.error_page(
            403, "Refused", "This form could not be accepted. Go back, reload the page and try again.", staff
        )

    async def check_csrf(
        self, request: web.Request, expected: str | None, staff: CurrentStaff | None
    ) -> web.Response | None:
        problem = _origin_problem(request, self.cookie_secure)
        if problem:
            return await self.refuse_csrf(request, staff, problem)
        form = await self.form(request)
        given = form.get(CSRF_FIELD)
        if not _tokens_match(given, expected):
            return await self.refuse_csrf(request, staff, "missing CSRF token" if not given else "wrong CSRF token")
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        try:
            route = request.match_info.route
            if route.name in PUBLIC_ROUTES:
                if route.name == "login_post":
                    cookie = request.cookies.get(LOGIN_COOKIE)
                    refused = await self.check_csrf(
                        request, cookie if cookie and TOKEN_RE.match(cookie) else None, None
                    )
                    if refused is not None:
                        return refused
                return await handler(request)
            auto = request.method == "GET" and (
                route.name == "events" or (route.name == "queue" and request.query.get("auto") == "1")
            )
            staff, ended = await self.current_staff(request, touch=not auto)
            if staff is None:
                response = _redirect(self.url("login") + ("?ended=1" if ended else ""))
                if SESSION_COOKIE in request.cookies:
                    self.clear_cookie(response, SESSION_COOKIE)
                return response
            request[STAFF_KEY] = staff
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                refused = await self.check_csrf(request, staff.csrf_token, staff)
                if refused is not None:
                    return refused
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:  # noqa: BLE001 - a plain page, never a traceback
            log.exception("dashboard error on %s %s", request.method, request.path)
            return self.error_page(
                500,
                "Something went wrong",
                "The dashboard could not do that just now. Nothing was changed "
                "unless the page says so. Try again in a moment.",
                request.get(STAFF_KEY),
            )

    # -- login and logout -----------------------------------------------------------------------
    def login_page(
        self, request: web.Request, status: int = 200, error: str | None = None, name: str = ""
    ) -> web.Response:
        token = request.cookies.get(LOGIN_COOKIE)
        if not token or not TOKEN_RE.match(token):
            token = staff_sessions.new_token()
        message = next((text for key, text in LOGIN_MESSAGES.items() if request.query.get(key) == "1"), None)
        response = self.render(
            "login.html", status=status, login_csrf=token, error=error, message=None if error else message, name=name
        )
        response.set_cookie(
            LOGIN_COOKIE, token, path=self.cookie_path, httponly=True, samesite="Strict", secure=self.cookie_secure
        )
        return response

    async def root(self, request: web.Request) -> web.Response:
        return _redirect(self.url("queue"))

    async def login_form(self, request: web.Request) -> web.Response:
        staff, _ = await self.current_staff(request)
        if staff is not None:
            return _redirect(self.url("queue"))
        response = self.login_page(request)
        if SESSION_COOKIE in request.cookies:
            self.clear_cookie(response, SESSION_COOKIE)
        return response

    async def login_post(self, request: web.Request) -> web.Response:
        """Counted by the throttle before any password work; audited whatever happens."""
        form = await self.form(request)
        raw_name, password, code = form.get("name"), form.get("password"), form.get("code")
        name = auth.normalise_name(raw_name) if isinstance(raw_name, str) else ""
        password = password if isinstance(password, str) else ""
        client = _client(request, self.trust_forwarded_for)
        shown_name = name[: auth.MAX_NAME]
        if not name or not password:
            await self.db(auth.record_login_failure, self.sessions, name, None, "incomplete", client)
            return self.login_page(request, 200, LOGIN_INCOMPLETE, shown_name)
        verdict = await self.db(self.throttle.admit, name, client)
        if not verdict.admitted:
            await self.db(
                auth.record_login_failure,
                self.sessions,
                name,
                None,
                f"throttled ({verdict.key})",
                client,
                verdict.wait_seconds,
            )
            return self.login_page(
                request, 429, LOGIN_LOCKED.format(wait=_wait_words(verdict.wait_seconds)), shown_name
            )
        if len(name) > auth.MAX_NAME or len(password) > auth.MAX_PASSWORD:
            staff, known_id = None, None
        else:
            if self._password_checks is None:
                self._password_checks = asyncio.Semaphore(PASSWORD_CHECKS_AT_ONCE)
            async with self._password_checks:
                staff, known_id = await self.db(
                    auth.check_password, self.sessions, name, password, code if isinstance(code, str) else None
                )
        if staff is None:
            await self.db(auth.record_login_failure, self.sessions, name, known_id, "wrong name or password", client)
            return self.login_page(request, 200, LOGIN_FAILED, shown_name)
        await self.db(self.throttle.succeeded, name, client)
        old = request.cookies.get(SESSION_COOKIE)
        token, _csrf = await self.db(
            staff_sessions.start_session,
            self.sessions,
            staff,
            self.clock(),
            staff_sessions.token_hash(old) if old else None,
            self.idle,
            self.absolute,
            client,
        )
        response = _redirect(self.url("queue"))
        self.set_session_cookie(response, token)
        self.clear_cookie(response, LOGIN_COOKIE)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        staff: CurrentStaff = request[STAFF_KEY]
        await self.db(staff_sessions.end_session, self.sessions, staff, _client(request, self.trust_forwarded_for))
        response = _redirect(self.url("login") + "?out=1")
        self.clear_cookie(response, SESSION_COOKIE)
        return response

    # -- pages ----------------------------------------------------------------------------------
    async def queue(self, request: web.Request) -> web.Response:
        staff: CurrentStaff = request[STAFF_KEY]
        auto = request.query.get("auto") == "1"
        page = await self.db(views.queue_page, self.escalations, self.sessions, staff, self.clock(), self.fmt, auto)
        return self.render("queue.html", staff=staff, page=page)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """The live feed (server-sent events): the waiting escalations whenever they change, so
        the page shows a new one and sounds its alarm without a reload. The session is checked on
        every round without counting as activity; when it ends (timeout, logout, deactivation)
        the feed says so and closes."""
        staff: CurrentStaff = request[STAFF_KEY]
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        last, quiet = None, 0.0
        token = request.cookies.get(SESSION_COOKIE) or ""
        try:
            while not self.stopping.is_set():
                current, _ended = await self.db(
                    staff_sessions.load_session,
                    self.sessions,
                    staff_sessions.token_hash(token),
                    self.clock(),
                    self.idle,
                    self.absolute,
                    False,
                )
                if current is None or current.id != staff.id:
                    await response.write(b"event: ended\ndata: {}\n\n")
                    break
                state = await self.db(views.live_state, self.sessions)
                if state != last or quiet >= LIVE_KEEPALIVE:
                    await response.write(f"data: {json.dumps(state)}\n\n".encode())
                    last, quiet = state, 0.0
                try:
                    await asyncio.wait_for(self.stopping.wait(), self.live_every)
                except asyncio.TimeoutError:
                    quiet += self.live_every
        except (ConnectionError, RuntimeError):  # the nurse closed the tab
            pass
        return response

    async def escalation(self, request: web.Request) -> web.Response:
        staff: CurrentStaff = request[STAFF_KEY]
        page = await self.db(
            views.escalation_page,
            self.escalations,
            self.sessions,
            request.match_info["id"],
            staff,
            self.clock(),
            self.fmt,
        )
        if page is None:
            return self.error_page(404, "No such escalation", "There is no escalation with that reference.", staff)
        result = RESULTS.get(request.query.get("done", ""))
        return self.render(
            "escalation.html",
            staff=staff,
            esc=page,
            result={"kind": result[0], "text": result[1]} if result else None,
            max_note=MAX_NOTE,
        )

    async def _act(self, request: web.Request, action: str) -> web.Response:
        staff: CurrentStaff = request[STAFF_KEY]
        escalation_id = request.match_info["id"]
        form = await self.form(request)
        note = form.get("note")
        note = note.strip()[:MAX_NOTE] if isinstance(note, str) else ""
        back = self.url("escalation", id=escalation_id)
        if action == "resolve" and not note:
            await self.db(
                auth.record, self.sessions, "dashboard_resolve", staff, escalation_id, ok=False, reason="no note"
            )
            return _redirect(back + "?done=note_needed")
        call = self.escalations.acknowledge if action == "acknowledge" else self.escalations.resolve
        result = await self.db(call, escalation_id, staff.id, "dashboard", note or None)
        if not result.ok:
            code = "refused"
        elif result.message.startswith("Already"):
            code = f"already_{result.status}"
        else:
            code = "acknowledged" if action == "acknowledge" else "resolved"
        await self.db(
            auth.record,
            self.sessions,
            f"dashboard_{action}",
            staff,
            escalation_id,
            ok=result.ok,
            status=result.status,
            outcome=code,
        )
        return _redirect(back + f"?done={code}")

    # -- the patient's rights (admins only) -----------------------------------------------------------
    async def patient_data(self, request: web.Request) -> web.StreamResponse:
        """Export (a JSON download) or forget, for the conversation behind an escalation."""
        staff: CurrentStaff = request[STAFF_KEY]
        what, ref = request.match_info["what"], request.match_info["id"]
        if not staff.is_admin:
            await self.db(auth.record, self.sessions, "patient_data_refused", staff, ref, what=what)
            return self.error_page(403, "Admins only", "Only the clinic's administrators can do that.", staff)
        data = await self.db(patients.export, ref, self.sessions)
        if data is None:
            return self.error_page(404, "No such escalation", "There is no escalation with that reference.", staff)
        await self.db(auth.record, self.sessions, f"dashboard_patient_{what}", staff, ref)
        if what == "export":
            body = json.dumps(data, indent=1, ensure_ascii=False, default=str)
            return web.Response(
                text=body,
                content_type="application/json",
                charset="utf-8",
                headers={"Content-Disposition": f'attachment; filename="patient-data-{ref}.json"'},
            )
        conv = data["conversation"]
        await self.db(
            patients.forget, conv["id"], conv["channel"], None, {"via": f"dashboard:{staff.id}"}, self.sessions
        )
        return _redirect(self.url("escalation", id=ref) + "?done=forgotten")

    # -- the roster (admins only) ------------------------------------------------------------------
    async def roster(self, request: web.Request) -> web.Response:
        staff: CurrentStaff = request[STAFF_KEY]
        if not staff.is_admin:
            await self.db(auth.record, self.sessions, "roster_refused", staff, reason="not an admin")
            return self.error_page(403, "Admins only", "Only the clinic's administrators can change the roster.", staff)
        members = await self.db(roster_mod.roster, self.sessions)
        await self.db(auth.record, self.sessions, "dashboard_view_roster", staff)
        done = {"deactivate": "Deactivated: their sessions have ended.", "reactivate": "Reactivated."}.get(
            request.query.get("done", "")
        )
        return self.render("roster.html", staff=staff, members=members, result=done)

    async def roster_change(self, request: web.Request) -> web.Response:
        staff: CurrentStaff = request[STAFF_KEY]
        change, member_id = request.match_info["change"], int(request.match_info["id"])
        if not staff.is_admin or member_id == staff.id:
            await self.db(
                auth.record,
                self.sessions,
                "roster_refused",
                staff,
                change=change,
                staff_id=member_id,
                reason="not an admin" if not staff.is_admin else "own account",
            )
            return self.error_page(403, "Refused", "That roster change is not allowed.", staff)
        members = {m.id: m for m in await self.db(roster_mod.roster, self.sessions)}
        if member_id not in members:
            return self.error_page(404, "Not on the roster", "There is nobody with that id.", staff)
        act = roster_mod.deactivate if change == "deactivate" else roster_mod.reactivate
        await self.db(act, members[member_id].name, self.sessions, f"staff:{staff.id}")
        return _redirect(self.url("roster") + f"?done={change}")

    async def acknowledge(self, request: web.Request) -> web.Response:
        return await self._act(request, "acknowledge")

    async def resolve(self, request: web.Request) -> web.Response:
        return await self._act(request, "resolve")


def create_dashboard(
    escalations: Escalations,
    sessions: sessionmaker,
    *,
    idle_timeout_minutes: float = 15,
    absolute_timeout_hours: float = 12,
    cookie_secure: bool = False,
    clock: Callable[[], dt.datetime] = utcnow,
    display_timezone: str = "UTC",
    login_limits: Limits = DEFAULT_LIMITS,
    trust_forwarded_for: bool = False,
    live_every: float = 2.0,
) -> web.Application:
    """The nurses' dashboard as an aiohttp sub-application: mount it with
    `app.add_subapp("/staff/", create_dashboard(...))`.

    escalations: the escalation service; sessions: its SQLAlchemy session factory (for the staff,
    sessions, outbox and audit tables). cookie_secure: set when served over HTTPS (it should be,
    outside a laptop). clock: naive-UTC "now" (tests move it). display_timezone: an IANA zone name
    for the times shown to nurses (ages such as "12 min" do not depend on it). login_limits: the
    login throttle's limits. trust_forwarded_for: only behind a reverse proxy that sets
    X-Forwarded-For (the throttle's per-address key then uses the address the proxy saw).
    """
    if display_timezone.upper() == "UTC":
        tz: dt.tzinfo = dt.timezone.utc
    else:
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(display_timezone)
    d = Dashboard(
        escalations,
        sessions,
        dt.timedelta(minutes=idle_timeout_minutes),
        dt.timedelta(hours=absolute_timeout_hours),
        cookie_secure,
        clock,
        views.Formatter(tz),
        login_limits,
        trust_forwarded_for,
        live_every,
    )
    app = d.app
    # aiohttp 3.9's Signal annotation nests the handler type once too often
    app.on_response_prepare.append(d.on_response_prepare)  # type: ignore[arg-type]
    app.on_shutdown.append(d.on_shutdown)  # type: ignore[arg-type]
    r = app.router
    r.add_get("", d.root, name="root")  # /staff -> /staff/
    r.add_get("/", d.queue, name="queue")
    r.add_get("/login", d.login_form, name="login")
    r.add_post("/login", d.login_post, name="login_post")
    r.add_post("/logout", d.logout, name="logout")
    r.add_get("/events", d.events, name="events")
    r.add_get("/roster", d.roster, name="roster")
    r.add_post(f"/escalations/{{id:{ID_PATTERN}}}/patient/{{what:export|forget}}", d.patient_data, name="patient_data")
    r.add_post("/roster/{id:[0-9]{1,9}}/{change:deactivate|reactivate}", d.roster_change, name="roster_change")
    r.add_get(f"/escalations/{{id:{ID_PATTERN}}}", d.escalation, name="escalation")
    r.add_post(f"/escalations/{{id:{ID_PATTERN}}}/acknowledge", d.acknowledge, name="acknowledge")
    r.add_post(f"/escalations/{{id:{ID_PATTERN}}}/resolve", d.resolve, name="resolve")
    r.add_static("/static/", STATIC, name="static", show_index=False, follow_symlinks=False)
    return app
