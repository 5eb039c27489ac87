"""Consistency checks of the knowledge files beyond what loading enforces (`make validate`)."""

from __future__ import annotations

from collections import defaultdict

from .knowledge_base import Knowledge


def problems(knowledge: Knowledge) -> list[str]:
    """Everything a reviewer should fix; an empty list means the files are consistent."""
    out: list[str] = []
    by_phrasing = defaultdict(set)
    for concept in knowledge.concepts.values():
        if not concept.phrasings:
            out.append(f"concept {concept.id}: no phrasings")
        for p in concept.phrasings:
            by_phrasing[" ".join(p.lower().split())].add(concept.id)
    for phrasing, ids in sorted(by_phrasing.items()):
        classes = {knowledge.concepts[i].klass for i in ids}
        if len(classes) > 1:
            out.append(
                f"phrasing {phrasing!r} is in concepts of different classes: "
                + ", ".join(f"{i} ({knowledge.concepts[i].klass})" for i in sorted(ids))
            )
        elif len(ids) > 1:
            out.append(f"phrasing {phrasing!r} is in several concepts: {', '.join(sorted(ids))}")
    by_cue = defaultdict(set)
    for cue in knowledge.cues:
        by_cue[" ".join(cue.cue.lower().split())].add(cue.category)
    for cue_text, cats in sorted(by_cue.items()):
        if len(cats) > 1:
            out.append(f"context cue {cue_text!r} is in several categories: {', '.join(sorted(cats))}")
    return out
