"""The audit log: one row per thing that happened (who, what, which escalation, details), written
in the same transaction as the change it records. Append-only: a database trigger refuses UPDATE
and DELETE (see migrations). Details never hold a patient's words or a typed password."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .models import AuditEntry


def audit(
    session: Session,
    action: str,
    *,
    actor_type: str = "system",
    actor_id: str | None = None,
    escalation_id: str | None = None,
    **detail: Any,
) -> None:
    session.add(
        AuditEntry(action=action, actor_type=actor_type, actor_id=actor_id, escalation_id=escalation_id, detail=detail)
    )
