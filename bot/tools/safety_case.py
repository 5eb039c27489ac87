"""`make safety-case`: the report a clinical safety officer reads and signs.

reports/safety-case/index.html (one self-contained page): the hazard log with each control's
tests and whether they passed in this run; the triage figures on the dev vignettes and on every
independent case set, the first-sight line beside today's; the fault tests; the clinician review
sheet's content hash and who signed it (docs/safety/sign-off.yml); the open known misses.
The tests the hazard log names are run here (pytest, JUnit XML), so the page says what was
verified on this commit, not what was once true; `--no-run` reads an earlier run's XML instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

from bot.settings import ROOT
from bot.tools import case_sets, hazard_log

OUT = ROOT / "reports" / "safety-case"
SIGN_OFF = ROOT / "docs" / "safety" / "sign-off.yml"
REVIEW_SHEET = ROOT / "docs" / "clinician-review.md"
KNOWN_MISSES = ROOT / "tests" / "triage" / "known_misses.yml"
TARGETS = {"redflag_sensitivity": 0.98, "emergency_sensitivity": 0.95}
FAULT_FILES = (
    "tests/e2e/test_failures.py",
    "tests/escalation/test_targets.py",
    "tests/escalation/test_relay.py",
    "tests/escalation/test_postgres_restart.py",
    "tests/e2e/test_alerts_without_telegram.py",
)


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


# -- gathering ------------------------------------------------------------------------------------
def run_tests(test_ids: list[str], junit: Path) -> int:
    """The hazard log's tests, once each, into JUnit XML."""
    junit.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *test_ids]
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode


def results(junit: Path) -> dict[str, str]:
    """test id (path::name, parameters folded) -> passed | failed | skipped (worst of its cases)."""
    out: dict[str, str] = {}
    if not junit.exists():
        return out
    order = {"passed": 0, "skipped": 1, "failed": 2}
    for case in ET.parse(junit).getroot().iter("testcase"):
        path = (case.get("classname") or "").replace(".", "/") + ".py"
        name = re.sub(r"\[.*", "", case.get("name") or "")
        test_id = f"{path}::{name}"
        state = (
            "failed"
            if case.find("failure") is not None or case.find("error") is not None
            else "skipped"
            if case.find("skipped") is not None
            else "passed"
        )
        if order[state] >= order[out.get(test_id, "passed")]:
            out[test_id] = state
    return out


def figures(line: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", line)}


def case_set_rows() -> list[dict[str, Any]]:
    rows = []
    for entry in case_sets.registry()["sets"]:
        path = case_sets.SETS_DIR / entry["name"] / f"{entry['name']}.jsonl"
        now, _ = case_sets.score_line(path)
        first = (entry.get("first_sight") or {}).get("line", "")
        rows.append(
            {
                "name": entry["name"],
                "date": (entry.get("first_sight") or {}).get("date", ""),
                "voice": entry.get("voice", ""),
                "first": first,
                "now": now,
                "first_figures": figures(first),
                "now_figures": figures(now),
            }
        )
    return rows


def dev_line() -> str:
    gold = case_sets.ROOT.parent / "shared" / "vignettes" / "dev.jsonl"
    if not gold.exists():
        return "the dev vignettes are not beside this checkout"
    return case_sets.score_line(gold)[0]


def review_sheet() -> dict[str, Any]:
    text = REVIEW_SHEET.read_text(encoding="utf-8") if REVIEW_SHEET.exists() else ""
    found = re.search(r"content hash[^`]*`([0-9a-f]{64})`", text)
    current = found.group(1) if found else "unknown"
    signed = (
        [
            s
            for s in ((yaml.safe_load(SIGN_OFF.read_text(encoding="utf-8")) or {}).get("sign_offs") or [])
            if s.get("document") == "clinician-review" and s.get("content_hash") == current
        ]
        if SIGN_OFF.exists()
        else []
    )
    return {"hash": current, "signed": signed}


# -- rendering ------------------------------------------------------------------------------------
def bars(rows: list[dict[str, Any]]) -> str:
    """An inline SVG: first-sight red-flag and emergency sensitivity per set, with the targets."""
    width, height, pad = 900, 260, 40
    n = max(1, len(rows))
    band = (width - 2 * pad) / n
    floor = 0.5  # the axis starts at 0.5: the differences that matter are near the top
    y = lambda v: height - pad - max(0.0, v - floor) / (1 - floor) * (height - 2 * pad)  # noqa: E731
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="plot-title" class="plot">',
        f'<text x="2" y="{height - pad + 4}" class="small">{floor:g}</text><text x="2" y="{pad + 4}" class="small">1</text>',
        '<title id="plot-title">First-sight red-flag (dark) and emergency (light) sensitivity per set</title>',
    ]
    for value in TARGETS.values():
        parts.append(
            f'<line x1="{pad}" x2="{width - pad}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="target"/>'
            f'<text x="{width - pad + 2}" y="{y(value) + 4:.1f}" class="small">{value:g}</text>'
        )
    for i, r in enumerate(rows):
        for j, key in enumerate(("redflag_sensitivity", "emergency_sensitivity")):
            v = r["first_figures"].get(key, 0.0)
            x = pad + i * band + 2 + j * (band - 4) / 2
            parts.append(
                f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{(band - 4) / 2 - 1:.1f}" '
                f'height="{height - pad - y(v):.1f}" class="bar{j}"><title>{e(r["name"])} {key} {v:.3f}</title></rect>'
            )
        parts.append(
            f'<text x="{pad + i * band + band / 2:.1f}" y="{height - pad + 14}" class="small" '
            f'text-anchor="middle">{e(r["name"])}</text>'
        )
    parts.append(f'<line x1="{pad}" x2="{width - pad}" y1="{height - pad}" y2="{height - pad}" class="axis"/></svg>')
    return "".join(parts)


def hazard_section(doc: dict[str, Any], got: dict[str, str]) -> str:
    rows = []
    for h in doc.get("hazards") or []:
        controls = []
        for c in h.get("controls") or []:
            states = [got.get(t, "not run") for t in c.get("verified_by") or []]
            verdict = "verified" if states and all(s == "passed" for s in states) else "NOT verified"
            tests = "".join(
                f'<li class="{e(s.replace(" ", "-"))}"><code>{e(t)}</code>: {e(s)}</li>'
                for t, s in zip(c.get("verified_by") or [], states)
            )
            controls.append(
                f'<li><strong>{e(c["id"])}</strong> {e(c["description"])} '
                f'<span class="verdict {"ok" if verdict == "verified" else "bad"}">{verdict}</span>'
                f"<ul>{tests}</ul></li>"
            )
        risk = lambda r: f"{r['severity']} x {r['likelihood']} = {r['severity'] * r['likelihood']}"  # noqa: E731
        rows.append(
            f'<section class="hazard"><h3 id="{e(h["id"])}">{e(h["id"])}: {e(h["title"])}</h3>'
            f"<p>Initial risk {risk(h['initial_risk'])}; residual risk {risk(h['residual_risk'])}.</p>"
            f"<p><em>Causes:</em> {e('; '.join(h.get('causes') or []))}</p>"
            f"<p><em>Effects:</em> {e('; '.join(h.get('effects') or []))}</p>"
            f"<ul>{''.join(controls)}</ul>"
            + (f'<p class="open">Open: {e(h["open_issues"])}</p>' if h.get("open_issues") else "")
            + "</section>"
        )
    return "".join(rows)


def page(
    doc: dict[str, Any],
    got: dict[str, str],
    sets: list[dict[str, Any]],
    dev: str,
    sheet: dict[str, Any],
    misses: list[dict[str, Any]],
    commit: str,
) -> str:
    ids = {t for h in doc.get("hazards") or [] for c in h.get("controls") or [] for t in c.get("verified_by") or []}
    passed = sum(got.get(t) == "passed" for t in ids)
    faults = sorted(t for t in got if t.split("::")[0] in FAULT_FILES)
    signed = sheet["signed"]
    sign_text = (
        "signed by " + ", ".join(f"{e(s.get('name'))} ({e(s.get('role'))}, {e(s.get('date'))})" for s in signed)
        if signed
        else "NOT SIGNED for this content hash (add the signature to docs/safety/sign-off.yml)"
    )
    set_rows = "".join(
        f"<tr><th scope='row'>{e(r['name'])}</th><td>{e(r['date'])}</td><td><code>{e(r['first'])}</code></td>"
        f"<td><code>{e(r['now'])}</code></td></tr>"
        for r in sets
    )
    newest = sets[-1] if sets else None
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Clinical safety case · HSG aftercare assistant</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #111; }}
h1 {{ margin-bottom: .2rem; }} table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #bbb; padding: .3rem .45rem; vertical-align: top; text-align: left; }}
code {{ font-size: 12.5px; }} .verdict.ok {{ color: #14632d; font-weight: 700; }}
.verdict.bad, .failed, .not-run, .unsigned {{ color: #a10000; font-weight: 700; }} .passed {{ color: #14632d; }}
.hazard {{ border-top: 2px solid #ddd; }} .open {{ background: #fff4d6; padding: .3rem; }}
.plot {{ width: 100%; height: auto; }} .bar0 {{ fill: #1d4e89; }} .bar1 {{ fill: #8fb8e8; }}
.target {{ stroke: #a10000; stroke-dasharray: 4 3; }} .axis {{ stroke: #333; }} .small {{ font-size: 11px; }}
.summary td:first-child {{ font-weight: 600; width: 16rem; }}
</style></head><body>
<h1>Clinical safety case</h1>
<p>HSG aftercare triage assistant · commit <code>{e(commit)}</code> · generated {e(dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))}
by <code>make safety-case</code>. The clinical safety officer signs this page for this commit.</p>
<table class="summary">
<tr><td>Hazard log</td><td>{len(doc.get("hazards") or [])} hazards; {passed} of {len(ids)} verifying tests passed in this run</td></tr>
<tr><td>Dev vignettes (safety gate)</td><td><code>{e(dev)}</code></td></tr>
<tr><td>Newest independent set, first sight</td><td><code>{e(newest["first"] if newest else "none")}</code>
 (targets: red-flag sensitivity &ge; {TARGETS["redflag_sensitivity"]}, emergency &ge; {TARGETS["emergency_sensitivity"]})</td></tr>
<tr><td>Clinician review sheet</td><td>content hash <code>{e(sheet["hash"])}</code>;
 <span class="{"passed" if signed else "unsigned"}">{sign_text}</span></td></tr>
<tr><td>Known misses (strict xfails)</td><td>{len(misses)}</td></tr>
</table>
<h2>Triage on every independent case set</h2>
<p>Each set was written by a writer who saw only the patient guide and the clinical facts, labelled
by a second reader; its first-sight line is the engine's score before anything was changed from it
(the honest measure); "now" is today's engine on the same set (tuned, so not a measure of generalisation).</p>
{bars(sets)}
<table><thead><tr><th scope="col">Set</th><th scope="col">Scored</th><th scope="col">First sight</th><th scope="col">Now</th></tr></thead>
<tbody>{set_rows}</tbody></table>
<h2>Fault tests</h2>
<ul>{"".join(f'<li class="{e(got[t].replace(" ", "-"))}"><code>{e(t)}</code>: {e(got[t])}</li>' for t in faults) or "<li>none run</li>"}</ul>
<h2>Hazard log</h2>
{hazard_section(doc, got)}
<h2>Open known misses</h2>
<ul>{"".join(f"<li>{e(m.get('text'))}: <em>{e(m.get('why'))}</em></li>" for m in misses) or "<li>none</li>"}</ul>
</body></html>
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true", help="use the last run's JUnit XML instead of running")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    doc = hazard_log.load()
    problems = hazard_log.problems(doc)
    for p in problems:
        print(f"hazard log: {p}", file=sys.stderr)
    junit = args.out / "tests.xml"
    ids = sorted(
        {t for h in doc.get("hazards") or [] for c in h.get("controls") or [] for t in c.get("verified_by") or []}
    )
    if not args.no_run:
        print(f"==> running the {len(ids)} tests the hazard log names", flush=True)
        run_tests(ids, junit)
    print("==> scoring the dev vignettes and every independent case set", flush=True)
    sets, dev = case_set_rows(), dev_line()
    misses = yaml.safe_load(KNOWN_MISSES.read_text(encoding="utf-8")) or [] if KNOWN_MISSES.exists() else []
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    got = results(junit)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "index.html").write_text(
        page(doc, got, sets, dev, review_sheet(), misses, commit or "unknown"), encoding="utf-8"
    )
    (args.out / "summary.json").write_text(
        json.dumps(
            {"tests": got, "sets": [{k: r[k] for k in ("name", "first", "now")} for r in sets], "dev": dev}, indent=1
        )
    )
    failed = [t for t in ids if got.get(t) != "passed"]
    print(f"wrote {args.out / 'index.html'}: {len(ids) - len(failed)} of {len(ids)} verifying tests passed")
    return 1 if problems or failed else 0


if __name__ == "__main__":
    sys.exit(main())
