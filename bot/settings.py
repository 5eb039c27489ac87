"""Settings: the clinic's details from one YAML file, deployment settings from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

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
class Settings:
    clinic: Clinic
    resend_after_minutes: float
    tell_patient_after_minutes: float
    database_url: str
    data_dir: Path
    telegram_bot_token: Optional[str]
    telegram_staff_chat_id: Optional[str]
    telegram_api_base_url: Optional[str]


def load(clinic_file: Optional[Path] = None) -> Settings:
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
    )


@lru_cache(maxsize=1)
def get() -> Settings:
    return load()
