"""`python -m bot purge | backup | restore | patient export | patient forget`: the patient's data
over its whole life, from the command line (each step audited)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot import settings


def _purge(args: argparse.Namespace) -> int:
    from bot import privacy
    from bot.store.db import default
    from bot.store.retention import purge

    cfg = settings.get()
    tracker = None if args.skip_rasa else privacy.purge_rasa_conversations
    done = purge(default().sessions, cfg.retention, cfg.data_dir / "archive", tracker_purge=tracker)
    print(
        "purged: "
        + ", ".join(f"{k} {v}" for k, v in done.counts.items())
        + (f"; audit archive {done.archive}" if done.archive else "")
    )
    return 0


def _backup(args: argparse.Namespace) -> int:
    from bot.store.backup import backup
    from bot.store.db import default

    cfg = settings.get()
    print(backup(default(), cfg.data_dir, Path(args.out or cfg.data_dir / "backups")))
    return 0


def _restore(args: argparse.Namespace) -> int:
    from bot.store.backup import restore

    cfg = settings.get()
    try:
        found = restore(Path(args.archive), cfg.database_url, cfg.data_dir, force=args.force)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    print(
        f"restored {found['escalations']} escalations (the backup had {found['expected']}); "
        f"secrets restored: {', '.join(found['secrets']) or 'none (already present)'}"
    )
    return 0 if found["escalations"] == found["expected"] else 1


def _export(args: argparse.Namespace) -> int:
    from bot import patients, privacy

    data = patients.export(args.key, rasa_events=privacy.rasa_conversation_events)
    if data is None:
        print("no conversation or escalation with that id", file=sys.stderr)
        return 2
    json.dump(data, sys.stdout, indent=1, ensure_ascii=False, default=str)
    print()
    return 0


def _forget(args: argparse.Namespace) -> int:
    from bot import patients, privacy

    cfg = settings.get()
    data = patients.export(args.key)
    if data is None:
        print("no conversation or escalation with that id", file=sys.stderr)
        return 2
    conv = data["conversation"]
    done = patients.forget(conv["id"], conv["channel"], detail={"via": "cli"})
    try:
        rasa = f"{privacy.forget_rasa_conversation(conv['id'])} of Rasa's stored events"
    except Exception as e:  # noqa: BLE001 - reported: the operator must finish by hand
        rasa = f"NOT Rasa's stored events ({type(e).__name__}: delete them by hand)"
    print(
        f"deleted: the contact and consent ({'yes' if done.contact_deleted else 'none held'}), "
        f"{done.updates_deleted} stored Telegram updates, {rasa}."
    )
    print(
        f"kept: {done.escalations_kept} escalation(s), the clinical record of warning signs the nurses acted on, "
        f"for {cfg.retention.escalations_days:g} days after they were resolved (then purged); the audit log's "
        f"entries, which name only the opaque conversation id, for {cfg.retention.audit_days:g} days."
    )
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("purge", help="delete what is older than clinic.yml's retention periods (audited)")
    p.add_argument("--skip-rasa", action="store_true", help="leave Rasa's tracker store alone")
    p.set_defaults(func=_purge)
    p = sub.add_parser("backup", help="the database and its secrets into one tar.gz (mode 0600)")
    p.add_argument("--out", help="directory (default var/backups)")
    p.set_defaults(func=_backup)
    p = sub.add_parser("restore", help="fill an empty database (DATABASE_URL) from a backup")
    p.add_argument("archive")
    p.add_argument("--force", action="store_true", help="overwrite a database that already holds escalations")
    p.set_defaults(func=_restore)
    p = sub.add_parser("patient", help="a patient's rights: a copy of her data, or forgetting it")
    psub = p.add_subparsers(dest="patient_command", required=True)
    e = psub.add_parser("export", help="everything held about one conversation, as JSON")
    e.add_argument("key", help="the conversation id or an escalation reference (H-...)")
    e.set_defaults(func=_export)
    f = psub.add_parser("forget", help="delete what can be deleted, and say what is kept and why")
    f.add_argument("key", help="the conversation id or an escalation reference (H-...)")
    f.set_defaults(func=_forget)
