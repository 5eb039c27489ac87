"""Command line: `python -m bot triage "message"`, `python -m bot triage --jsonl FILE`, ..."""

from __future__ import annotations

import argparse
import json
import os
import sys


def _without_tensorflow() -> None:
    """The engine never needs TensorFlow, but spaCy's thinc imports it when installed (~3 s);
    commands that only use the engine block that import to start fast."""
    sys.modules.setdefault("tensorflow", None)  # type: ignore[arg-type]  # a None entry blocks the import (typeshed allows modules only)


def _triage(args: argparse.Namespace) -> int:
    _without_tensorflow()
    from bot.triage import TriageEngine, engine

    eng = TriageEngine(learned=False) if args.rules_only else engine()
    if args.jsonl:
        source = sys.stdin if args.jsonl == "-" else open(args.jsonl, encoding="utf-8")  # noqa: SIM115
        with source:
            for lineno, line in enumerate(source, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    text = row["text"]
                except (ValueError, KeyError, TypeError) as e:
                    print(f"line {lineno}: expected a JSON object with 'id' and 'text' ({e})", file=sys.stderr)
                    return 2
                decision = eng.triage(text)
                out = {"id": row.get("id"), "level": decision.level}
                if args.full:
                    out.update(decision.to_dict())
                print(json.dumps(out, ensure_ascii=False))
        return 0
    if args.message is None:
        print("give a message, or --jsonl FILE", file=sys.stderr)
        return 2
    print(json.dumps(eng.triage(args.message).to_dict(), ensure_ascii=False, indent=2))
    return 0


def _validate(args: argparse.Namespace) -> int:
    _without_tensorflow()
    from bot.triage import TriageEngine, knowledge_base
    from bot.triage.checks import problems

    try:
        knowledge = knowledge_base.load()
        TriageEngine(knowledge)  # compiles every phrasing and cue
    except Exception as e:  # a broken file: say where, fail
        print(f"knowledge files: {e}", file=sys.stderr)
        return 1
    found = problems(knowledge)
    for p in found:
        print(f"knowledge files: {p}", file=sys.stderr)
    if not found:
        n = sum(len(c.phrasings) for c in knowledge.concepts.values())
        print(
            f"knowledge files OK: {len(knowledge.concepts)} concepts, {n} phrasings, "
            f"{len(knowledge.cues)} context cues, {len(knowledge.combinations)} combinations"
        )
    return 1 if found else 0


def _run(args: argparse.Namespace) -> int:
    from bot.supervisor import run

    return run(args.model)


def _run_scale(args: argparse.Namespace) -> int:
    from bot.scale import run_scale

    return run_scale(args.model, args.instances)


def _data_dir():
    from pathlib import Path

    from bot.settings import ROOT

    return Path(os.environ.get("HSG_DATA_DIR") or ROOT / "var")


def _actions(args: argparse.Namespace) -> int:
    import logging

    from bot.private_servers import run_actions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_actions(args.port, _data_dir(), host=args.host)
    return 0


def _without_jax() -> None:
    """TensorFlow 2.12 imports JAX (~105 MB resident) only for its TFLite converter, which Rasa
    never calls; blocking it keeps the Rasa server smaller (`make bench`, issue 13)."""
    sys.modules.setdefault("jax", None)  # type: ignore[arg-type]  # a None entry blocks the import (typeshed allows modules only)


def _skops_before_rasa() -> None:
    """Rasa's logistic-regression intent classifier loads through skops, whose import walks every
    loaded module once per type it trusts: ~9.6 s after TensorFlow and Rasa are loaded, 2.1 s
    before them (start to ready is a `make bench` target)."""
    import skops.io  # noqa: F401


def _rasa(args: argparse.Namespace) -> int:
    _without_jax()
    _skops_before_rasa()
    from bot.private_servers import run_rasa

    run_rasa(
        args.model,
        args.port,
        args.action_port,
        args.web_origin or [],
        _data_dir(),
        host=args.interface,
        action_url=args.action_url,
        in_process_actions=args.in_process_actions,
    )
    return 0


def _web(args: argparse.Namespace) -> int:
    from bot.web.app import run

    try:
        run(args.rasa_url, host=args.host, port=args.port)
    except ValueError as e:  # a malformed --rasa-url or clinic settings file
        print(e, file=sys.stderr)
        return 2
    return 0


def _db(args: argparse.Namespace) -> int:
    from bot import settings
    from bot.store.db import Database

    Database(settings.get().database_url, migrate=True)
    print("database schema is up to date")
    return 0


def _relay(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from bot.wiring import run_relay

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run_relay())
    return 0


def _timers(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from bot.wiring import run_timers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run_timers())
    return 0


def _telegram(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    _without_tensorflow()
    from bot.wiring import build_gateway, run_telegram

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    webhook = None
    try:
        if args.webhook:
            from bot.channels.telegram.webhook import WebhookConfig

            webhook = WebhookConfig.from_env()
        gateway = build_gateway(args.rasa_url)
    except ValueError as e:  # a malformed setting: say which, fail
        print(e, file=sys.stderr)
        return 2
    asyncio.run(run_telegram(gateway, webhook=webhook))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("triage", help="triage a message (the decision path of a first message)")
    p.add_argument("message", nargs="?")
    p.add_argument("--jsonl", metavar="FILE", help="JSON lines with id and text ('-' for stdin)")
    p.add_argument("--full", action="store_true", help="with --jsonl: the whole decision per line")
    p.add_argument(
        "--rules-only", action="store_true", help="without the learned second opinion (to measure what it adds)"
    )
    p.set_defaults(func=_triage)
    p = sub.add_parser("validate", help="check the clinical knowledge files")
    p.set_defaults(func=_validate)
    p = sub.add_parser("run", help="start Rasa (with the actions in it) and the web app (make run)")
    p.add_argument("--model", required=True, help="trained model archive")
    p.set_defaults(func=_run)
    p = sub.add_parser(
        "run-scale", help="several Rasa servers behind HAProxy on PostgreSQL and Redis (make run-scale N=2)"
    )
    p.add_argument("--model", required=True, help="trained model archive")
    p.add_argument("--instances", type=int, default=2)
    p.set_defaults(func=_run_scale)
    p = sub.add_parser("actions", help="the action server on 127.0.0.1, shared secret required")
    p.add_argument("--port", type=int, default=5055)
    p.add_argument("--host", default="127.0.0.1", help="listen address (a container's private network only)")
    p.set_defaults(func=_actions)
    p = sub.add_parser("rasa", help="Rasa on 127.0.0.1: HTTP API behind a JWT, actions with their secret")
    p.add_argument("--model", required=True)
    p.add_argument("--port", type=int, default=5005)
    p.add_argument("--action-port", type=int, default=5055)
    p.add_argument("--web-origin", action="append", help="an origin allowed by CORS (repeatable)")
    p.add_argument("--interface", default="127.0.0.1", help="listen address (a container's private network only)")
    p.add_argument("--action-url", help="the action server's webhook when it is not on this machine's --action-port")
    p.add_argument(
        "--in-process-actions",
        action="store_true",
        help="run the custom actions inside this process (make run): no action server, no action port",
    )
    p.set_defaults(func=_rasa)
    p = sub.add_parser("web", help="serve the patients' chat page (talks to Rasa's socket.io channel)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--rasa-url", required=True, help="the Rasa server as patients' browsers reach it, e.g. http://localhost:5005"
    )
    p.set_defaults(func=_web)
    p = sub.add_parser("db", help="create or upgrade the database schema (Alembic)")
    p.add_argument("action", choices=["upgrade"])
    p.set_defaults(func=_db)
    from bot.staff.cli import add_parser as add_staff_parser

    add_staff_parser(sub)
    from bot.store.cli import add_parsers as add_data_parsers

    add_data_parsers(sub)
    p = sub.add_parser("relay", help="deliver staff alerts from the outbox (Telegram, email, dashboard)")
    p.set_defaults(func=_relay)
    p = sub.add_parser("timers", help="re-alert unacknowledged escalations; tell patients to call directly")
    p.set_defaults(func=_timers)
    p = sub.add_parser(
        "telegram", help="the Telegram bot: staff buttons and patients' private chats (long polling, or --webhook)"
    )
    p.add_argument(
        "--rasa-url",
        default=os.environ.get("RASA_URL", "http://localhost:5005"),
        help="Rasa's HTTP server (REST channel and HTTP API; default http://localhost:5005)",
    )
    p.add_argument(
        "--webhook",
        action="store_true",
        help="serve Telegram's webhook instead of long polling (TELEGRAM_WEBHOOK_URL, "
        "TELEGRAM_WEBHOOK_SECRET, TELEGRAM_WEBHOOK_LISTEN)",
    )
    p.set_defaults(func=_telegram)
    args = parser.parse_args(argv)
    if args.command != "rasa":
        # only the Rasa server runs TensorFlow; every other process would carry ~0.6 GB and ~2 s for it
        _without_tensorflow()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
