"""The clinician review sheet (docs/clinician-review.md) is generated, current and well formed."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from bot.tools import review_sheet

ROOT = Path(__file__).resolve().parents[2]
SHEET = ROOT / "docs" / "clinician-review.md"


def run(*args):
    return subprocess.run([sys.executable, "-m", "bot.tools.review_sheet", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_the_committed_sheet_is_current():
    p = run("--check")
    assert p.returncode == 0, "docs/clinician-review.md is out of date: run `make review-sheet`\n" + p.stderr
    assert "is current" in p.stdout


def test_check_fails_after_a_knowledge_edit(knowledge_copy, tmp_path):
    sheet = tmp_path / "sheet.md"
    assert run("--knowledge", str(knowledge_copy), "--out", str(sheet)).returncode == 0
    assert run("--knowledge", str(knowledge_copy), "--out", str(sheet), "--check").returncode == 0
    concepts = knowledge_copy / "concepts.yml"
    concepts.write_text(concepts.read_text().replace("      - tiredness\n", "      - tiredness\n      - zonked\n"))
    p = run("--knowledge", str(knowledge_copy), "--out", str(sheet), "--check")
    assert p.returncode == 1
    assert "make review-sheet" in p.stderr and "zonked" in p.stderr


def test_header_names_the_files_and_the_content_hash():
    text = SHEET.read_text()
    assert text.startswith("<!-- GENERATED FILE")
    for name in review_sheet.FILES:
        assert f"bot/triage/knowledge/{name}" in text.split("## Concepts")[0]
    assert review_sheet.content_hash() in text
    assert "## Sign-off" in text and "| Reviewer (name, role) |" in text and "| Signature |" in text


def _cells(row: str):
    """Split a Markdown table row on unescaped pipes."""
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


def test_every_table_row_has_its_columns_and_every_concept_is_listed():
    lines = SHEET.read_text().splitlines()
    tables, current = [], None
    for line in lines:
        if line.startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            current.append(line)
        else:
            current = None
    assert len(tables) >= 6
    for t in tables:
        width = len(_cells(t[0]))
        for row in t:
            assert len(_cells(row)) == width, row[:120]
    concepts = yaml.safe_load((ROOT / "bot/triage/knowledge/concepts.yml").read_text())["concepts"]
    concept_table = next(t for t in tables if t[0].startswith("| Concept id"))
    assert len(concept_table) == 2 + len(concepts)
    for c in concepts:
        assert any(row.startswith(f"| `{c['id']}` |") for row in concept_table), c["id"]
    # a phrasing with alternatives keeps its pipes, escaped
    assert r"`(stomachache\|tummyache\|bellyache\|stomachaches)`" in "\n".join(concept_table)


def test_thresholds_come_from_values_yml():
    values = yaml.safe_load((ROOT / "bot/triage/knowledge/values.yml").read_text())["thresholds"]
    text = SHEET.read_text()
    for key, value in values.items():
        shown = " to ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        assert f"| `{key}` | {shown} |" in text
