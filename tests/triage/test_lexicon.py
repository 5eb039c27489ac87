"""The lexicon of lay expressions (tests/triage/lexicon): how patients name each sign.

Written by two clinical linguists who saw only the guide and clinical-facts.md (BRIEF.md), it
drove the knowledge files' phrasings family by family; here it guards them. Each short
expression, triaged alone by the rules (no learned model), must land in its family's range.
"""
from pathlib import Path

import pytest
import yaml

from bot.triage import RANK, TriageEngine

HERE = Path(__file__).parent / "lexicon"
EXPECT = {   # family -> (lowest, highest) acceptable level for the expression alone
    "breathing_trouble": ("emergency", "emergency"), "chest_pain": ("emergency", "emergency"),
    "airway_swelling": ("emergency", "emergency"), "collapse": ("emergency", "emergency"),
    "near_faint": ("self_care", "emergency"), "shock_skin_heart": ("routine", "emergency"),
    "sepsis_mind": ("urgent", "emergency"), "sepsis_body": ("urgent", "emergency"),
    "fever": ("urgent", "urgent"), "rigors": ("urgent", "urgent"), "vomiting": ("urgent", "urgent"),
    "nausea_only": ("self_care", "self_care"), "heavy_bleeding": ("urgent", "emergency"),
    "light_bleeding": ("self_care", "self_care"), "foul_discharge": ("urgent", "urgent"),
    "severe_pain": ("urgent", "urgent"), "increasing_pain": ("urgent", "urgent"),
    "hard_belly": ("urgent", "urgent"), "skin_reaction": ("urgent", "emergency"),
    "pregnancy": (None, None), "one_sided_or_shoulder": ("self_care", "urgent"),
    "unlisted_complaint": ("routine", "routine"), "not_symptoms": ("info", "info"),
    "questions_not_reports": ("info", "info"),
}
RED_FLAG_FAMILIES = [f for f, (lo, _) in EXPECT.items() if lo in ("urgent", "emergency")]
FAMILIES = {}
for path in sorted(HERE.glob("*.yml")):
    FAMILIES.update(yaml.safe_load(path.read_text()))


@pytest.fixture(scope="module")
def rules():
    return TriageEngine(learned=False)


def _misses(rules, family):
    lo, hi = EXPECT[family]
    out = []
    for text in FAMILIES[family]:
        d = rules.triage(text)
        if lo is None:
            ok = any(f.concept == "pregnancy_positive" and f.counts for f in d.findings)
        else:
            ok = RANK[lo] <= RANK[d.level] <= RANK[hi]
        if not ok:
            out.append(f"{d.level}: {text}")
    return out


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_is_recognised(rules, family):
    misses = _misses(rules, family)
    floor = 0.93 if family in RED_FLAG_FAMILIES else 0.85
    assert 1 - len(misses) / len(FAMILIES[family]) >= floor, "\n".join(misses)
