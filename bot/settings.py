"""Settings: the clinic's details from one YAML file, deployment settings from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CLINIC_FILE = ROOT / "clinic.yml"


@dataclass(frozen=True)
class Clinic:
    name: str
    phone: str
    out_of_hours_phone: str
    hours: str
    emergency_number: str
    website: str = ""

    def as_slots(self) -> dict:
        """The values response templates use: {clinic_name}, {clinic_phone}, ..."""
        return {
            "clinic_name": self.name,
            "clinic_phone": self.phone,
            "clinic_out_of_hours_phone": self.out_of_hours_phone,
            "clinic_hours": self.hours,
            "emergency_number": self.emergency_number,
        }


@dataclass(frozen=True)
class Smtp:
    """Alert email (reference, level, time, dashboard link; never the patient's words)."""

    host: str | None = None
    port: int = 25
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    sender: str | None = None
    recipients: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.host and self.sender and self.recipients)


@dataclass(frozen=True)
class Alerting:
    """Where staff alerts go and how a flood is tamed (clinic.yml `escalation`)."""

    targets: tuple[str, ...] = ("telegram", "email", "dashboard")
    max_alerts_per_minute: dict[str, int] = field(default_factory=lambda: {"telegram": 20, "email": 10})
    new_per_channel_per_minute: int = 30
    dashboard_url: str = "http://localhost:8080/staff/"


@dataclass(frozen=True)
class Retention:
    """How long each kind of record is kept (clinic.yml `retention`, in days)."""

    conversations_days: float = 90
    escalations_days: float = 8 * 365
    outbox_days: float = 30
    telegram_updates_days: float = 7
    audit_days: float = 8 * 365


@dataclass(frozen=True)
class RelayTuning:
    """The outbox relay's timing (HSG_RELAY_*): the lease after which a row claimed by a relay that
    died is claimed again, the retry backoff base, and a test-only pause in the crash window."""

    lease_seconds: float = 60.0
    backoff_base: float = 2.0
    pause_before_send: float = 0.0


@dataclass(frozen=True)
class Settings:
    clinic: Clinic
    resend_after_minutes: float
    tell_patient_after_minutes: float
    database_url: str
    data_dir: Path
    telegram_bot_token: str | None
    telegram_staff_chat_id: str | None
    telegram_api_base_url: str | None
    smtp: Smtp = Smtp()
    alerting: Alerting = Alerting()
    relay: RelayTuning = RelayTuning()
    retention: Retention = Retention()

    def staff_targets(self) -> tuple[str, ...]:
        """The alert targets in use: those listed in clinic.yml whose settings are present; the
        dashboard needs none and is always one."""
        ready = {
            "telegram": bool(self.telegram_bot_token and self.telegram_staff_chat_id),
            "email": self.smtp.configured,
            "dashboard": True,
        }
        chosen = [t for t in self.alerting.targets if ready.get(t)]
        return tuple(dict.fromkeys(chosen + ["dashboard"]))


def load(clinic_file: Path | None = None) -> Settings:
    path = Path(clinic_file or os.environ.get("CLINIC_SETTINGS") or DEFAULT_CLINIC_FILE)
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    c = doc.get("clinic") or {}
    missing = [k for k in ("name", "phone", "out_of_hours_phone", "hours", "emergency_number") if not c.get(k)]
    if missing:
        raise ValueError(f"{path}: clinic settings missing {', '.join(missing)}")
    esc = doc.get("escalation") or {}
    data_dir = Path(os.environ.get("HSG_DATA_DIR") or ROOT / "var")
    return Settings(
        clinic=Clinic(**{k: str(v) for k, v in c.items() if k in Clinic.__dataclass_fields__}),
        resend_after_minutes=float(esc.get("resend_after_minutes", 10)),
        tell_patient_after_minutes=float(esc.get("tell_patient_after_minutes", 20)),
        database_url=os.environ.get("DATABASE_URL") or f"sqlite:///{data_dir / 'hsg.db'}",
        data_dir=data_dir,
        telegram_bot_token=os.environ.get("TELEGRAM_BOT_TOKEN") or None,
        telegram_staff_chat_id=os.environ.get("TELEGRAM_STAFF_CHAT_ID") or None,
        telegram_api_base_url=os.environ.get("TELEGRAM_API_BASE_URL") or None,
        smtp=_smtp(esc.get("email") or {}, os.environ),
        alerting=_alerting(esc, os.environ),
        retention=Retention(
            **{k: float(v) for k, v in (doc.get("retention") or {}).items() if k in Retention.__dataclass_fields__}
        ),
        relay=RelayTuning(
            lease_seconds=float(os.environ.get("HSG_RELAY_LEASE_SECONDS", "60")),
            backoff_base=float(os.environ.get("HSG_RELAY_BACKOFF_BASE", "2")),
            pause_before_send=float(os.environ.get("HSG_RELAY_PAUSE_BEFORE_SEND", "0")),
        ),
    )


def _smtp(doc: Mapping[str, Any], env: Mapping[str, str]) -> Smtp:
    """clinic.yml `escalation.email`, each value overridden by its environment variable."""

    def pick(var: str, key: str, default: Any = None) -> Any:
        return env.get(var) or doc.get(key) or default

    to = pick("ALERT_EMAIL_TO", "to", "")
    recipients = tuple(a.strip() for a in (to if isinstance(to, list) else str(to).split(",")) if a.strip())
    return Smtp(
        host=pick("SMTP_HOST", "host"),
        port=int(pick("SMTP_PORT", "port", 25)),
        user=pick("SMTP_USER", "user"),
        password=env.get("SMTP_PASSWORD") or None,
        starttls=str(pick("SMTP_STARTTLS", "starttls", "false")).lower() in ("1", "true", "yes"),
        sender=pick("ALERT_EMAIL_FROM", "from"),
        recipients=recipients,
    )


def _alerting(esc: Mapping[str, Any], env: Mapping[str, str]) -> Alerting:
    base = Alerting()
    targets = env.get("HSG_ALERT_TARGETS") or esc.get("targets") or base.targets
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    unknown = set(targets) - {"telegram", "email", "dashboard"}
    if unknown:
        raise ValueError(f"escalation.targets: unknown target(s) {', '.join(sorted(unknown))}")
    limits = {
        **base.max_alerts_per_minute,
        **{str(k): int(v) for k, v in (esc.get("max_alerts_per_minute") or {}).items()},
    }
    return Alerting(
        targets=tuple(targets),
        max_alerts_per_minute=limits,
        new_per_channel_per_minute=int(esc.get("new_per_channel_per_minute", base.new_per_channel_per_minute)),
        dashboard_url=env.get("HSG_DASHBOARD_URL") or esc.get("dashboard_url") or base.dashboard_url,
    )


@lru_cache(maxsize=1)
def get() -> Settings:
    return load()
