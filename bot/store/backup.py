"""Backup and restore of the clinic's database and the secrets its records depend on.

A backup is one tar.gz (mode 0600) holding the database (SQLite's online backup API, so a running
bot is copied consistently; `pg_dump -Fc` for PostgreSQL), the secrets in the data directory (the
Telegram id secret: without it no patient's chat maps to her conversation again) and a manifest.
Restore refuses a database that already holds escalations unless forced. Both are audited: the
backup in the database it copied, the restore in the database it filled.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from .audit import audit
from .db import Database, transaction
from .models import Escalation

SECRET_FILES = ("telegram_id_secret", "rasa-api-secret", "action-secret")


def _pg_args(url: str) -> tuple[list[str], str | None, dict[str, str]]:
    """pg_dump/pg_restore connection arguments, the schema a search_path option names, and env."""
    u = make_url(url)
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    options = str(u.query.get("options", ""))
    schema = options.split("search_path=", 1)[1].split(",")[0].strip() if "search_path=" in options else None
    env = {**os.environ, **({"PGPASSWORD": u.password} if u.password else {})}
    return args, schema, env


def _escalations(db: Database) -> int:
    if not inspect(db.engine).has_table("escalations"):
        return 0
    with db.sessions() as s:
        return int(s.execute(select(func.count()).select_from(Escalation)).scalar() or 0)


def backup(db: Database, data_dir: Path, out_dir: Path, now: dt.datetime | None = None) -> Path:
    now = now or dt.datetime.now(dt.timezone.utc)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = out_dir / f"hsg-backup-{now:%Y%m%dT%H%M%SZ}.tar.gz"
    dialect = db.engine.dialect.name
    with transaction(db.sessions) as s:
        audit(s, "backup_made", actor_id="cli", file=path.name, dialect=dialect)
    manifest: dict[str, Any] = {
        "made_at": now.isoformat(),
        "dialect": dialect,
        "escalations": _escalations(db),
        "secrets": [n for n in SECRET_FILES if (data_dir / n).exists()],
    }
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / ("database.sqlite" if dialect == "sqlite" else "database.pgdump")
        if dialect == "sqlite":
            with sqlite3.connect(db.engine.url.database or "") as src, sqlite3.connect(dump) as dst:
                src.backup(dst)
        else:
            args, schema, env = _pg_args(db.url)
            cmd = [
                "pg_dump",
                "-Fc",
                "--no-owner",
                *args,
                *(["-n", schema] if schema else []),
                "-f",
                str(dump),
                make_url(db.url).database or "postgres",
            ]
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            manifest["schema"] = schema
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            tar.add(dump, arcname=dump.name)
            for name in manifest["secrets"]:
                tar.add(data_dir / name, arcname=f"secrets/{name}")
            blob = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


def restore(archive: Path, url: str, data_dir: Path, force: bool = False) -> dict[str, Any]:
    """Fill an empty database (and the data directory's missing secrets) from a backup."""
    target = Database(url, migrate=False)
    try:
        if _escalations(target) and not force:
            raise ValueError("the target database already holds escalations; use --force to overwrite it")
        with tempfile.TemporaryDirectory() as tmp, tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
            manifest = json.loads((Path(tmp) / "manifest.json").read_text())
            if manifest["dialect"] != target.engine.dialect.name:
                raise ValueError(f"a {manifest['dialect']} backup cannot be restored into {target.engine.dialect.name}")
            target.dispose()
            if manifest["dialect"] == "sqlite":
                dest = Path(make_url(url).database or "")
                dest.parent.mkdir(parents=True, exist_ok=True)
                for suffix in ("-wal", "-shm"):
                    Path(f"{dest}{suffix}").unlink(missing_ok=True)
                shutil.copyfile(Path(tmp) / "database.sqlite", dest)
                dest.chmod(0o600)
            else:
                args, _schema, env = _pg_args(url)
                cmd = [
                    "pg_restore",
                    "--no-owner",
                    *args,
                    *(["--clean", "--if-exists"] if force else []),
                    "-d",
                    make_url(url).database or "postgres",
                    str(Path(tmp) / "database.pgdump"),
                ]
                subprocess.run(cmd, check=True, env=env, capture_output=True)
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            restored_secrets = []
            for name in manifest.get("secrets", []):
                dest_secret = data_dir / name
                if force or not dest_secret.exists():
                    shutil.copyfile(Path(tmp) / "secrets" / name, dest_secret)
                    dest_secret.chmod(0o600)
                    restored_secrets.append(name)
        target = Database(url)  # migrate a backup from an older schema up to this code's
        found = _escalations(target)
        with transaction(target.sessions) as s:
            audit(
                s,
                "backup_restored",
                actor_id="cli",
                file=archive.name,
                made_at=manifest["made_at"],
                escalations=found,
                secrets=restored_secrets,
            )
        return {"escalations": found, "expected": manifest["escalations"], "secrets": restored_secrets}
    finally:
        target.dispose()
