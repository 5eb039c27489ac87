"""The triage levels and their order, defined once for the engine, the conversation, the
escalations and the dashboard (a tiny module, so the relay and the dashboard need not load
the triage engine to compare two levels)."""

from __future__ import annotations

# Least to most urgent. The order is the product's safety rule: the most urgent finding wins.
LEVELS = ("info", "self_care", "routine", "urgent", "emergency")
RANK = {level: i for i, level in enumerate(LEVELS)}
ESCALATED = ("urgent", "emergency")  # the levels that open an escalation to the nurses


def more_urgent(a: str, b: str) -> str:
    return a if RANK[a] >= RANK[b] else b
