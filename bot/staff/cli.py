"""`python -m bot staff ...`: the roster from the command line (each change audited as 'cli')."""

from __future__ import annotations

import argparse
import getpass
import sys

from . import roster


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass(f"dashboard password for {args.name}: ")
    if password != getpass.getpass("again: "):
        print("the passwords differ", file=sys.stderr)
        return None
    return password


def _add(args: argparse.Namespace) -> str:
    password = _password(args)
    if password is None:
        raise ValueError("no password set")
    st = roster.add_staff(args.name, args.telegram_id, password, role="admin" if args.admin else "nurse")
    return f"staff member {st.name} registered (id {st.id}, telegram {st.telegram_user_id}, role {st.role})"


def _deactivate(args: argparse.Namespace) -> str:
    m = roster.deactivate(args.name)
    return f"{m.name} deactivated: dashboard sessions ended, Telegram buttons refused from now on"


def _reactivate(args: argparse.Namespace) -> str:
    return f"{roster.reactivate(args.name).name} is active again"


def _passwd(args: argparse.Namespace) -> str:
    password = _password(args)
    if password is None:
        raise ValueError("password not changed")
    return f"password changed for {roster.set_password(args.name, password).name}; their sessions ended"


def _set_telegram(args: argparse.Namespace) -> str:
    m = roster.set_telegram(args.name, args.telegram_id)
    return f"{m.name}: Telegram id {m.telegram_user_id}"


def _set_role(args: argparse.Namespace) -> str:
    m = roster.set_role(args.name, args.role)
    return f"{m.name} is now {m.role}; their sessions ended"


def _totp(args: argparse.Namespace) -> str:
    import pyotp

    if args.off:
        return f"second factor turned off for {roster.set_totp(args.name, None).name}"
    secret = pyotp.random_base32()
    m = roster.set_totp(args.name, secret)
    uri = pyotp.TOTP(secret).provisioning_uri(name=m.name, issuer_name="HSG aftercare dashboard")
    return f"second factor on for {m.name}. Add it to an authenticator app:\n{uri}"


def _list(args: argparse.Namespace) -> str:
    rows = [f"{'name':30} {'role':6} {'active':6} {'telegram':>12} {'2FA':3}"]
    for m in roster.roster():
        rows.append(
            f"{m.name[:30]:30} {m.role:6} {'yes' if m.active else 'NO':6} "
            f"{m.telegram_user_id or '-':>12} {'on' if m.has_totp else '-':3}"
        )
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    try:
        print(args.staff_func(args))
    except (ValueError, LookupError) as e:
        print(str(e).strip("'\""), file=sys.stderr)
        return 2
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("staff", help="manage the clinic staff roster")
    p.set_defaults(func=run)
    staff_sub = p.add_subparsers(dest="staff_command", required=True)

    def cmd(name: str, fn, help: str, password: bool = False) -> argparse.ArgumentParser:
        c = staff_sub.add_parser(name, help=help)
        c.add_argument("name")
        if password:
            c.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        c.set_defaults(staff_func=fn)
        return c

    c = cmd("add", _add, "register a nurse (dashboard password from a prompt or stdin)", password=True)
    c.add_argument("--telegram-id", type=int, help="the nurse's Telegram user id (for the alert buttons)")
    c.add_argument("--admin", action="store_true", help="may change the roster on the dashboard")
    cmd("deactivate", _deactivate, "end a nurse's access at once (sessions ended, buttons refused)")
    cmd("reactivate", _reactivate, "give a deactivated nurse access again")
    cmd("passwd", _passwd, "set a new dashboard password (ends the nurse's sessions)", password=True)
    c = cmd("set-telegram", _set_telegram, "change (or with no id, remove) a nurse's Telegram user id")
    c.add_argument("telegram_id", type=int, nargs="?")
    c = cmd("set-role", _set_role, "make a nurse an admin or a nurse again")
    c.add_argument("role", choices=roster.ROLES)
    c = cmd("totp", _totp, "turn the dashboard's second factor on (prints the authenticator link) or off")
    c.add_argument("--off", action="store_true")
    lst = staff_sub.add_parser("list", help="the roster")
    lst.set_defaults(staff_func=_list)
