"""Command line: `python -m bot triage "message"`, `python -m bot triage --jsonl FILE`, ..."""
from __future__ import annotations

import argparse
import json
import sys


def _triage(args: argparse.Namespace) -> int:
    from bot.triage import engine

    eng = engine()
    if args.jsonl:
        source = sys.stdin if args.jsonl == "-" else open(args.jsonl, encoding="utf-8")
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("triage", help="triage a message (the decision path of a first message)")
    p.add_argument("message", nargs="?")
    p.add_argument("--jsonl", metavar="FILE", help="JSON lines with id and text ('-' for stdin)")
    p.add_argument("--full", action="store_true", help="with --jsonl: the whole decision per line")
    p.set_defaults(func=_triage)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
