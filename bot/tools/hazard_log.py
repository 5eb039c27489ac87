"""The hazard log (docs/safety/hazard-log.yml): checked and rendered to Markdown.

`python -m bot.tools.hazard_log` writes docs/safety/hazard-log.md; `--check` fails (exit 1) when
a hazard has no control, a control names no test, a named test does not exist, or the Markdown is
out of date. Tests are found by reading the test files (no pytest collection, so the check is fast
and runs in `make validate`).
"""

from __future__ import annotations

import argparse
import ast
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.settings import ROOT

LOG = ROOT / "docs" / "safety" / "hazard-log.yml"
RENDERED = LOG.with_suffix(".md")


def load(path: Path = LOG) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


@cache
def _tests_in(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(
        n.name
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test_")
    )


def test_exists(test_id: str, root: Path = ROOT) -> bool:
    path, _, name = test_id.partition("::")
    file = root / path
    return bool(name) and file.is_file() and name in _tests_in(file)


def problems(doc: dict[str, Any], root: Path = ROOT) -> list[str]:
    """Everything that makes the log unfit to sign."""
    out: list[str] = []
    hazards = doc.get("hazards") or []
    if not hazards:
        out.append("no hazards listed")
    seen: set[str] = set()
    for h in hazards:
        hid = str(h.get("id", "?"))
        if hid in seen:
            out.append(f"{hid}: listed twice")
        seen.add(hid)
        for key in ("title", "causes", "effects", "initial_risk", "residual_risk"):
            if not h.get(key):
                out.append(f"{hid}: no {key}")
        controls = h.get("controls") or []
        if not controls:
            out.append(f"{hid}: no control")
        for c in controls:
            tests = c.get("verified_by") or []
            if not tests:
                out.append(f"{hid} {c.get('id', '?')}: no test verifies this control")
            out.extend(f"{hid} {c.get('id', '?')}: no such test {t}" for t in tests if not test_exists(t, root))
    return out


def _risk(r: dict[str, Any]) -> str:
    s, likelihood = int(r.get("severity", 0)), int(r.get("likelihood", 0))
    return f"{s} x {likelihood} = {s * likelihood}"


def render(doc: dict[str, Any]) -> str:
    lines = [
        "# Hazard log",
        "",
        "Generated from `docs/safety/hazard-log.yml` by `make hazard-log`; edit the YAML, not this file.",
        f"Severity x likelihood; residual risk above {doc.get('acceptable_risk', 6)} needs the clinical "
        "safety officer's sign-off.",
        "",
        "| Hazard | Initial risk | Controls | Residual risk |",
        "| --- | --- | --- | --- |",
    ]
    for h in doc.get("hazards") or []:
        lines.append(
            f"| {h['id']}: {h['title']} | {_risk(h['initial_risk'])} | "
            f"{', '.join(c['id'] for c in h.get('controls') or [])} | {_risk(h['residual_risk'])} |"
        )
    for h in doc.get("hazards") or []:
        lines += ["", f"## {h['id']}: {h['title']}", "", "Causes:"]
        lines += [f"- {c}" for c in h.get("causes") or []]
        lines += ["", "Effects:"] + [f"- {e}" for e in h.get("effects") or []]
        lines += ["", f"Initial risk: {_risk(h['initial_risk'])}. Residual risk: {_risk(h['residual_risk'])}.", ""]
        for c in h.get("controls") or []:
            lines.append(f"- **{c['id']}** {c['description']}")
            lines += [f"  - verified by `{t}`" for t in c.get("verified_by") or []]
        if h.get("open_issues"):
            lines += ["", f"Open: {h['open_issues']}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the log is unfit or the Markdown is stale")
    args = parser.parse_args(argv)
    doc = load()
    found = problems(doc)
    for p in found:
        print(f"hazard log: {p}", file=sys.stderr)
    text = render(doc)
    if args.check:
        stale = not RENDERED.exists() or RENDERED.read_text(encoding="utf-8") != text
        if stale:
            print("hazard log: docs/safety/hazard-log.md is out of date (run make hazard-log)", file=sys.stderr)
        return 1 if found or stale else 0
    RENDERED.write_text(text, encoding="utf-8")
    print(f"wrote {RENDERED.relative_to(ROOT)} ({len(doc.get('hazards') or [])} hazards)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
