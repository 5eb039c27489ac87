"""The conversation designer's report (`make evaluate`): NLU, stories and triage in one page.

    python -m bot.tools.evaluate --model models/hsg-....tar.gz [--out reports]

Writes reports/<UTC timestamp>/ and points reports/latest at it (a symlink, or a copy where
symlinks are not possible):
  index.html        open it in a browser
  summary.json      the headline numbers (the next report compares against them)
  nlu/              `rasa test nlu` on the held-out set tests/nlu/holdout.yml (never trained on)
  stories/          `rasa test core` on tests/stories
  *.png             plots (matplotlib): intent confusion matrix, intent F1, triage accuracy by level

The two Rasa runs go in parallel (each spends most of its time loading the model) while the triage
engine scores the dev vignettes and the project's own case sets in this process. The dev
vignettes are read where they live and only shown in the report (reports/ is not in git).
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bot.tools.gates import LEVELS, GateResult, default_path, read_jsonl, score_rows

ROOT = Path(__file__).resolve().parents[2]
NLU_HOLDOUT = ROOT / "tests" / "nlu" / "holdout.yml"
STORIES = ROOT / "tests" / "stories"
CASES = ROOT / "tests" / "triage" / "cases"
HOLDOUT = ROOT / "tests" / "triage" / "sets" / "holdout" / "holdout.jsonl"
KNOWN_MISSES = ROOT / "tests" / "triage" / "known_misses.yml"

# Headline numbers compared between reports: key -> (label, higher is better)
HEADLINES: dict[str, tuple[str, bool]] = {
    "nlu.intent_weighted_f1": ("NLU held-out: intent weighted F1", True),
    "nlu.intent_accuracy": ("NLU held-out: intent accuracy", True),
    "nlu.faq_weighted_f1": ("NLU held-out: FAQ answer (sub-intent) weighted F1", True),
    "stories.conversation_accuracy": ("Story tests: conversations correct", True),
    "stories.action_weighted_f1": ("Story tests: action weighted F1", True),
    "triage.dev.accuracy": ("Dev vignettes: accuracy", True),
    "triage.dev.redflag_sensitivity": ("Dev vignettes: red-flag sensitivity", True),
    "triage.dev.emergency_sensitivity": ("Dev vignettes: emergency sensitivity", True),
    "triage.dev.under_triage": ("Dev vignettes: under-triage", False),
    "triage.dev.over_triage": ("Dev vignettes: over-triage", False),
    "triage.cases.accuracy": ("Case set (tests/triage/cases): accuracy", True),
    "triage.cases.redflag_sensitivity": ("Case set: red-flag sensitivity", True),
    "triage.holdout.accuracy": ("Triage holdout set: accuracy", True),
    "triage.holdout.redflag_sensitivity": ("Triage holdout set: red-flag sensitivity", True),
}


def say(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------------------------ Rasa runs


def _rasa(args: list[str], log: Path) -> tuple[subprocess.Popen, object]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "RASA_TELEMETRY_ENABLED": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    rasa = str(Path(sys.executable).parent / "rasa")
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = open(log, "w")  # noqa: SIM115 - closed by the caller with the process
    proc = subprocess.Popen([rasa, *args], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    return proc, handle


def _finish(proc: subprocess.Popen, handle, log: Path, what: str, timeout: float = 900) -> str | None:
    """Wait for a Rasa run; None when it worked, else the end of its log."""
    try:
        code: int | str = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = "timeout"
    handle.close()
    if code == 0:
        return None
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
    return f"{what} failed (exit {code}); end of {log.name}:\n{tail}"


def read_nlu(folder: Path) -> dict:
    """intent_report.json (+ successes/errors) and response_selection_report.json, if written."""
    out: dict = {"ok": False}
    report = folder / "intent_report.json"
    if not report.exists():
        return out
    rep = json.loads(report.read_text())
    out["ok"] = True
    out["accuracy"] = rep.get("accuracy")
    out["weighted"] = rep.get("weighted avg") or {}
    out["macro"] = rep.get("macro avg") or {}
    out["intents"] = sorted(
        ({"name": k, **v} for k, v in rep.items() if isinstance(v, dict) and not k.endswith(" avg")),
        key=lambda r: (r["f1-score"], r["name"]),
    )
    rows = []
    for name in ("intent_successes.json", "intent_errors.json"):
        path = folder / name
        if path.exists():
            rows += json.loads(path.read_text())
    out["predictions"] = [(r["intent"], (r.get("intent_prediction") or {}).get("name") or "None") for r in rows]
    errors = folder / "intent_errors.json"
    out["errors"] = json.loads(errors.read_text()) if errors.exists() else []
    rs = folder / "response_selection_report.json"
    if rs.exists():
        rsr = json.loads(rs.read_text())
        out["faq"] = {
            "accuracy": rsr.get("accuracy"),
            "weighted": rsr.get("weighted avg") or {},
            "labels": sorted(
                ({"name": k, **v} for k, v in rsr.items() if isinstance(v, dict) and not k.endswith(" avg")),
                key=lambda r: (r["f1-score"], r["name"]),
            ),
        }
        rse = folder / "response_selection_errors.json"
        out["faq"]["errors"] = json.loads(rse.read_text()) if rse.exists() else []
    return out


def read_stories(folder: Path) -> dict:
    out: dict = {"ok": False}
    report = folder / "story_report.json"
    if not report.exists():
        return out
    rep = json.loads(report.read_text())
    conv = rep.get("conversation_accuracy") or {}
    out.update(
        ok=True,
        conversation_accuracy=conv.get("accuracy"),
        correct=conv.get("correct"),
        total=conv.get("total"),
        with_warnings=conv.get("with_warnings"),
        action_accuracy=rep.get("accuracy"),
        action_weighted=rep.get("weighted avg") or {},
        actions=sorted(
            (
                {"name": k, **v}
                for k, v in rep.items()
                if isinstance(v, dict) and not k.endswith(" avg") and k != "conversation_accuracy"
            ),
            key=lambda r: (r["f1-score"], r["name"]),
        ),
    )
    failed = folder / "failed_test_stories.yml"
    text = failed.read_text() if failed.exists() else ""
    out["failed_text"] = "" if "None of the test stories failed" in text else text.strip()
    out["failed_count"] = (conv.get("total") or 0) - (conv.get("correct") or 0)
    return out


# ------------------------------------------------------------------------------------ triage


def case_rows() -> tuple[list[dict], dict[str, str]]:
    """tests/triage/cases/*.yml as rows with ids "<file>-<index>", and each row's rule family."""
    rows, family = [], {}
    for path in sorted(CASES.glob("*.yml")):
        for i, case in enumerate(yaml.safe_load(path.read_text()) or []):
            rid = f"{path.stem}-{i}"
            rows.append({"id": rid, **case})
            family[rid] = path.stem
    return rows, family


def known_misses() -> dict[str, str]:
    if not KNOWN_MISSES.exists():
        return {}
    return {m["text"]: m.get("why", "") for m in yaml.safe_load(KNOWN_MISSES.read_text()) or []}


def triage_sets(vignettes: Path | None) -> dict[str, dict]:
    # the engine never needs it; Rasa runs elsewhere
    sys.modules.setdefault("tensorflow", None)  # type: ignore[arg-type]  # a None entry blocks the import (typeshed allows modules only)
    from bot.triage import engine

    eng = engine()
    out: dict[str, dict] = {}
    if vignettes and vignettes.exists():
        out["dev"] = {
            "title": "Dev vignettes (clinician, scored)",
            "source": str(vignettes),
            "result": score_rows(read_jsonl(vignettes), eng, str(vignettes)),
        }
    rows, family = case_rows()
    res = score_rows(rows, eng, "tests/triage/cases")
    by_family: dict[str, list[int]] = {}
    failed = {f.id for f in res.failures}
    for r in rows:
        stat = by_family.setdefault(family[r["id"]], [0, 0])
        stat[0] += 1
        stat[1] += r["id"] not in failed
    out["cases"] = {
        "title": "Case set by rule family (tests/triage/cases)",
        "source": "tests/triage/cases/*.yml",
        "result": res,
        "families": by_family,
    }
    if HOLDOUT.exists():
        out["holdout"] = {
            "title": "Triage holdout set (tests/triage/sets/holdout)",
            "source": "tests/triage/sets/holdout/holdout.jsonl",
            "result": score_rows(read_jsonl(HOLDOUT), eng, "tests/triage/sets/holdout/holdout.jsonl"),
        }
    return out


# ------------------------------------------------------------------------------------ plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(pairs: list[tuple[str, str]], path: Path) -> None:
    plt = _plt()
    import numpy as np

    labels = sorted({g for g, _ in pairs} | {p for _, p in pairs})
    index = {name: i for i, name in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=int)
    for gold, pred in pairs:
        m[index[gold], index[pred]] += 1
    size = max(5.0, 0.55 * len(labels) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    shown = np.where(m > 0, m, np.nan)
    im = ax.imshow(np.log1p(shown), cmap="Blues")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if m[i, j]:
                ax.text(
                    j,
                    i,
                    str(m[i, j]),
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if m[i, j] > m.max() / 2 else ("#b00020" if i != j else "black"),
                )
    ax.set_xticks(range(len(labels)))
    ax.set_yticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticklabels(labels)
    ax.set_xlabel("predicted intent (after the triage safety net)")
    ax.set_ylabel("true intent")
    ax.set_title(f"Intent confusion matrix, held-out set (n={len(pairs)})")
    del im
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_f1(intents: list[dict], faq: list[dict], path: Path) -> None:
    plt = _plt()
    rows = [(r["name"], r["f1-score"]) for r in intents] + [(r["name"], r["f1-score"]) for r in faq]
    rows.sort(key=lambda r: r[1])
    fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.26 * len(rows) + 1.2)))
    colors = ["#c0392b" if v < 0.6 else "#e67e22" if v < 0.8 else "#2e86c1" for _, v in rows]
    ax.barh([n for n, _ in rows], [v for _, v in rows], color=colors)
    for i, (_, v) in enumerate(rows):
        ax.text(min(v + 0.01, 0.93), i, f"{v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 on the held-out set")
    ax.set_title("F1 per intent and per FAQ answer (faq/...)")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


LEGEND = {"dev": "dev vignettes", "cases": "tests/triage/cases", "holdout": "tests/triage/sets/holdout"}


def plot_levels(sets: dict[str, dict], path: Path) -> None:
    plt = _plt()
    import numpy as np

    names = list(sets)
    width = 0.8 / max(1, len(names))
    x = np.arange(len(LEVELS))
    fig, ax = plt.subplots(figsize=(8, 4.4))
    palette = {"dev": "#1f618d", "cases": "#7fb3d5", "holdout": "#f5b041"}
    for k, name in enumerate(names):
        per = sets[name]["result"].per_level
        vals = [per[lvl].accuracy if lvl in per else 0 for lvl in LEVELS]
        bars = ax.bar(
            x + (k - (len(names) - 1) / 2) * width, vals, width, label=LEGEND.get(name, name), color=palette.get(name)
        )
        for b, lvl in zip(bars, LEVELS):
            if lvl in per:
                ax.text(
                    b.get_x() + b.get_width() / 2,
                    b.get_height() + 0.01,
                    f"{per[lvl].accuracy:.2f}\nn={per[lvl].n}",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(x)
    ax.set_xticklabels(LEVELS)
    ax.set_ylim(0, 1.18)
    ax.set_ylabel("accuracy (level accepted)")
    ax.set_xlabel("gold level")
    ax.set_title("Triage accuracy by gold level")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=len(names), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------ summary


def headline(nlu: dict, stories: dict, triage: dict[str, dict]) -> dict[str, float | None]:
    h: dict[str, float | None] = {k: None for k in HEADLINES}
    if nlu.get("ok"):
        h["nlu.intent_weighted_f1"] = nlu["weighted"].get("f1-score")
        h["nlu.intent_accuracy"] = nlu.get("accuracy")
        if nlu.get("faq"):
            h["nlu.faq_weighted_f1"] = nlu["faq"]["weighted"].get("f1-score")
    if stories.get("ok"):
        h["stories.conversation_accuracy"] = stories.get("conversation_accuracy")
        h["stories.action_weighted_f1"] = stories["action_weighted"].get("f1-score")
    for name, s in triage.items():
        r: GateResult = s["result"]
        for metric in ("accuracy", "redflag_sensitivity", "emergency_sensitivity", "under_triage", "over_triage"):
            key = f"triage.{name}.{metric}"
            if key in h:
                h[key] = round(getattr(r, metric), 4)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()}


def previous_summary(out_root: Path) -> dict | None:
    latest = out_root / "latest" / "summary.json"
    candidates = [latest] if latest.exists() else []
    candidates += sorted(
        (p / "summary.json" for p in out_root.glob("20*") if (p / "summary.json").exists()), reverse=True
    )
    for c in candidates:
        try:
            return json.loads(c.read_text())
        except ValueError:
            continue
    return None


def compare(before: dict | None, after: dict[str, float | None]) -> list[dict]:
    if not before:
        return []
    old = before.get("headline") or {}
    rows = []
    for key, (label, higher_better) in HEADLINES.items():
        a, b = old.get(key), after.get(key)
        if a is None and b is None:
            continue
        if a is None or b is None or abs(b - a) < 5e-4:
            arrow, tone = ("→", "same") if a is not None and b is not None else ("?", "same")
        else:
            arrow = "↑" if b > a else "↓"
            tone = "better" if (b > a) == higher_better else "worse"
        rows.append({"label": label, "before": a, "after": b, "arrow": arrow, "tone": tone})
    return rows


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return rev + ("+changes" if dirty else "") if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def update_latest(out_root: Path, report: Path) -> str:
    latest = out_root / "latest"
    tmp = out_root / f".latest-{os.getpid()}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(report.name, tmp, target_is_directory=True)
        if latest.is_dir() and not latest.is_symlink():
            shutil.rmtree(latest)
        os.replace(tmp, latest)
        return "symlink"
    except OSError:
        if tmp.is_symlink():
            tmp.unlink()
        if latest.is_symlink() or latest.is_file():
            latest.unlink()
        elif latest.exists():
            shutil.rmtree(latest)
        shutil.copytree(report, latest)
        return "copy"


# ------------------------------------------------------------------------------------ HTML

TEMPLATE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>HSG assistant evaluation {{ meta.created }}</title>
<style>
 body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px;
        padding: 1.2rem 1.5rem 4rem; color: #1c2833; }
 h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 2px solid #d5dbdb; }
 h3 { margin-top: 1.4rem; }
 .meta { color: #566573; font-size: .9rem; }
 table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .88rem; }
 th, td { border: 1px solid #d5dbdb; padding: .25rem .5rem; text-align: left; vertical-align: top; }
 th { background: #f4f6f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
 .pass { color: #1e8449; font-weight: 600; } .fail { color: #b03a2e; font-weight: 600; }
 .better { color: #1e8449; font-weight: 600; } .worse { color: #b03a2e; font-weight: 600; } .same { color: #566573; }
 .cards { display: flex; flex-wrap: wrap; gap: .7rem; margin: 1rem 0; }
 .card { border: 1px solid #d5dbdb; border-radius: 8px; padding: .6rem .9rem; min-width: 11rem; }
 .card .v { font-size: 1.5rem; font-weight: 600; } .card .l { font-size: .8rem; color: #566573; }
 .safety td { background: #fdedec; }
 img { max-width: 100%; height: auto; border: 1px solid #eaeded; }
 pre { background: #f8f9f9; padding: .6rem; overflow-x: auto; font-size: .8rem; }
 details { margin: .4rem 0 1rem; } summary { cursor: pointer; color: #1f618d; }
 .note { color: #566573; font-size: .88rem; }
 nav a { margin-right: .8rem; }
</style>
</head>
<body>
<h1>HSG aftercare assistant: evaluation report</h1>
<p class="meta">{{ meta.created }} · model <code>{{ meta.model }}</code> · git {{ meta.git }} ·
 took {{ "%.0f"|format(meta.seconds) }} s</p>
<nav><a href="#changes">Changes</a><a href="#nlu">NLU</a><a href="#stories">Stories</a><a href="#triage">Triage</a></nav>

{% if problems %}<h2>Problems</h2>{% for p in problems %}<pre class="fail">{{ p }}</pre>{% endfor %}{% endif %}

<div class="cards">
 {% for c in cards %}<div class="card"><div class="v {{ c.tone }}">{{ c.value }}</div><div class="l">{{ c.label }}</div></div>{% endfor %}
</div>

<h2 id="changes">Change since the previous report</h2>
{% if changes %}
<p class="note">Previous report: {{ previous.get('created') or "?" }} (model <code>{{ previous.get('model') or "?" }}</code>).</p>
<table><tr><th>Headline</th><th>Before</th><th></th><th>After</th></tr>
{% for r in changes %}<tr><td>{{ r.label }}</td><td class="num">{{ fmt(r.before) }}</td>
<td class="{{ r.tone }}">{{ r.arrow }}</td><td class="num {{ r.tone }}">{{ fmt(r.after) }}</td></tr>{% endfor %}
</table>
{% else %}<p class="note">No previous report in this folder: this is the baseline for the next one.</p>{% endif %}

<h2 id="nlu">NLU on the held-out set</h2>
<p class="note"><code>rasa test nlu --nlu tests/nlu/holdout.yml</code>: examples never trained on. The intent is
the pipeline's last word, after the triage safety net: a question that mentions a symptom as the patient's own
(“how long will the spotting go on?”) is routed to <code>report_symptom</code> by design.</p>
{% if nlu.ok %}
<p>Intent accuracy <b>{{ fmt(nlu.accuracy) }}</b>, weighted F1 <b>{{ fmt(nlu.weighted["f1-score"]) }}</b>
 (macro F1 {{ fmt(nlu.macro["f1-score"]) }}){% if nlu.get('faq') %}; FAQ answers (retrieval sub-intents): accuracy
 <b>{{ fmt(nlu.faq.accuracy) }}</b>, weighted F1 <b>{{ fmt(nlu.faq.weighted["f1-score"]) }}</b>{% endif %}.</p>
<h3>Per intent</h3>
<table><tr><th>Intent</th><th>Precision</th><th>Recall</th><th>F1</th><th>Support</th><th>Confused with</th></tr>
{% for r in nlu.intents %}<tr><td>{{ r.name }}</td><td class="num">{{ fmt(r.precision) }}</td><td class="num">{{ fmt(r.recall) }}</td>
<td class="num">{{ fmt(r["f1-score"]) }}</td><td class="num">{{ r.support }}</td>
<td>{% for k, v in (r.get('confused_with') or {}).items() %}{{ k }} ({{ v }}){% if not loop.last %}, {% endif %}{% endfor %}</td></tr>{% endfor %}
</table>
<img src="intent_confusion.png" alt="intent confusion matrix">
{% if nlu.get('errors') %}<details><summary>{{ nlu.errors|length }} misclassified held-out examples</summary>
<table><tr><th>Text</th><th>True</th><th>Predicted</th><th>Confidence</th></tr>
{% for e in nlu.errors %}<tr><td>{{ e.text }}</td><td>{{ e.intent }}</td><td>{{ e.intent_prediction.name }}</td>
<td class="num">{{ fmt(e.intent_prediction.confidence) }}</td></tr>{% endfor %}</table></details>{% endif %}
{% if nlu.get('faq') %}
<h3>FAQ answers (faq/… sub-intents, bot/nlu/faq_selector.py)</h3>
<table><tr><th>Sub-intent</th><th>Precision</th><th>Recall</th><th>F1</th><th>Support</th><th>Confused with</th></tr>
{% for r in nlu.faq.labels %}<tr><td>{{ r.name }}</td><td class="num">{{ fmt(r.precision) }}</td><td class="num">{{ fmt(r.recall) }}</td>
<td class="num">{{ fmt(r["f1-score"]) }}</td><td class="num">{{ r.support }}</td>
<td>{% for k, v in (r.get('confused_with') or {}).items() %}{{ k }} ({{ v }}){% if not loop.last %}, {% endif %}{% endfor %}</td></tr>{% endfor %}
</table>
{% if nlu.faq.get('errors') %}<details><summary>{{ nlu.faq.errors|length }} questions given the wrong answer</summary>
<table><tr><th>Text</th><th>True</th><th>Predicted</th><th>Confidence</th></tr>
{% for e in nlu.faq.errors %}<tr><td>{{ e.text }}</td><td>{{ e.intent_response_key_target }}</td>
<td>{{ e.intent_response_key_prediction.name }}</td><td class="num">{{ fmt(e.intent_response_key_prediction.confidence) }}</td></tr>{% endfor %}
</table></details>{% endif %}
{% endif %}
<img src="intent_f1.png" alt="F1 per intent and FAQ answer">
{% else %}<p class="fail">No NLU results (see Problems).</p>{% endif %}

<h2 id="stories">Story tests</h2>
<p class="note"><code>rasa test core --stories tests/stories</code> (make test runs them with --fail-on-prediction-errors).</p>
{% if stories.ok %}
<p class="{{ 'pass' if stories.failed_count == 0 else 'fail' }}">{{ stories.correct }} / {{ stories.total }} stories
correct{% if stories.get('with_warnings') %}, {{ stories.with_warnings }} with warnings{% endif %}; action accuracy
{{ fmt(stories.action_accuracy) }}, weighted F1 {{ fmt(stories.action_weighted["f1-score"]) }}.</p>
<table><tr><th>Action</th><th>Precision</th><th>Recall</th><th>F1</th><th>Support</th></tr>
{% for r in stories.actions %}<tr><td>{{ r.name }}</td><td class="num">{{ fmt(r.precision) }}</td><td class="num">{{ fmt(r.recall) }}</td>
<td class="num">{{ fmt(r["f1-score"]) }}</td><td class="num">{{ r.support }}</td></tr>{% endfor %}</table>
{% if stories.get('failed_text') %}<h3>Failed stories</h3><pre>{{ stories.failed_text }}</pre>{% endif %}
{% else %}<p class="fail">No story results (see Problems).</p>{% endif %}

<h2 id="triage">Triage</h2>
<p class="note">The rule engine alone (bot/triage), as in the bot's first message. Gate: red-flag sensitivity
(gold urgent or emergency that got at least urgent) and emergency sensitivity both 1.000 on the dev vignettes.
Under-/over-triage: below the least / above the most urgent accepted level.</p>
<img src="triage_levels.png" alt="triage accuracy by gold level">
<table><tr><th>Set</th><th>n</th><th>Accuracy</th><th>Red-flag sensitivity</th><th>Emergency sensitivity</th>
<th>Under-triage</th><th>Over-triage</th><th>Gate</th></tr>
{% for name, s in triage.items() %}{% set r = s.result %}<tr><td>{{ s.title }}</td><td class="num">{{ r.n }}</td>
<td class="num">{{ fmt(r.accuracy) }}</td><td class="num">{{ fmt(r.redflag_sensitivity) }} ({{ r.redflag_hit }}/{{ r.redflag_n }})</td>
<td class="num">{{ fmt(r.emergency_sensitivity) }} ({{ r.emergency_hit }}/{{ r.emergency_n }})</td>
<td class="num">{{ fmt(r.under_triage) }}</td><td class="num">{{ fmt(r.over_triage) }}</td>
<td class="{{ 'pass' if r.ok else 'fail' }}">{{ 'pass' if r.ok else 'FAIL' }}</td></tr>{% endfor %}
</table>
{% for name, s in triage.items() %}{% set r = s.result %}
<h3>{{ s.title }}</h3>
<p class="note">{{ s.source }}</p>
<table><tr><th>Gold level</th><th>n</th><th>Correct</th><th>Accuracy</th></tr>
{% for lvl, v in r.per_level.items() %}<tr><td>{{ lvl }}</td><td class="num">{{ v.n }}</td><td class="num">{{ v.correct }}</td>
<td class="num">{{ fmt(v.accuracy) }}</td></tr>{% endfor %}</table>
{% if s.get('families') %}<details><summary>By rule family</summary><table><tr><th>Family</th><th>n</th><th>Correct</th></tr>
{% for fam, v in s.families.items() %}<tr><td>{{ fam }}</td><td class="num">{{ v[0] }}</td><td class="num">{{ v[1] }}</td></tr>{% endfor %}
</table></details>{% endif %}
{% if r.failures %}<p>{{ r.failures|length }} failure(s){% if r.missed %}, <span class="fail">{{ r.missed|length }} of them red flags missed</span>{% endif %}:</p>
<table><tr><th>Id</th><th>Gold</th><th>Got</th><th>Text</th></tr>
{% for f in r.failures %}<tr class="{{ 'safety' if f.safety else '' }}"><td>{{ f.id }}</td><td>{{ f.gold }}</td><td>{{ f.got }}</td>
<td>{{ f.text }}{% if known.get(f.text) %} <span class="note">(known miss: {{ known[f.text] }})</span>{% endif %}</td></tr>{% endfor %}</table>
{% else %}<p class="pass">No failures.</p>{% endif %}
{% endfor %}

<h2>Steps</h2>
<table><tr><th>Step</th><th>Seconds</th></tr>{% for k, v in meta.steps.items() %}<tr><td>{{ k }}</td><td class="num">{{ "%.1f"|format(v) }}</td></tr>{% endfor %}</table>
<p class="note">Raw outputs: <a href="nlu/">nlu/</a>, <a href="stories/">stories/</a>, <a href="summary.json">summary.json</a>.</p>
</body>
</html>
"""


def fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return html.escape(str(v))


def render_html(context: dict) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE).render(fmt=fmt, **context)


def cards(h: dict[str, float | None], triage: dict[str, dict], stories: dict) -> list[dict]:
    out = []
    dev = triage.get("dev")
    if dev:
        r = dev["result"]
        out.append(
            {
                "label": "triage gate (dev vignettes)",
                "value": "pass" if r.ok else "FAIL",
                "tone": "pass" if r.ok else "fail",
            }
        )
        out.append(
            {
                "label": "red-flag sensitivity (dev)",
                "value": fmt(r.redflag_sensitivity),
                "tone": "pass" if r.redflag_hit == r.redflag_n else "fail",
            }
        )
        out.append(
            {
                "label": "emergency sensitivity (dev)",
                "value": fmt(r.emergency_sensitivity),
                "tone": "pass" if r.emergency_hit == r.emergency_n else "fail",
            }
        )
    out.append({"label": "intent weighted F1 (held-out)", "value": fmt(h.get("nlu.intent_weighted_f1")), "tone": ""})
    out.append({"label": "FAQ answer weighted F1 (held-out)", "value": fmt(h.get("nlu.faq_weighted_f1")), "tone": ""})
    if stories.get("ok"):
        good = stories["failed_count"] == 0
        out.append(
            {
                "label": "story tests",
                "value": f"{stories['correct']}/{stories['total']}",
                "tone": "pass" if good else "fail",
            }
        )
    return out


# ------------------------------------------------------------------------------------ main


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.tools.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="trained model archive (make passes $(MODEL))")
    parser.add_argument(
        "--out",
        default=str(ROOT / "reports"),
        help="reports folder; the report goes to OUT/<UTC timestamp>/, OUT/latest points to it",
    )
    parser.add_argument("--nlu", default=str(NLU_HOLDOUT), help="held-out NLU data (default tests/nlu/holdout.yml)")
    parser.add_argument("--stories", default=str(STORIES), help="test stories (default tests/stories)")
    parser.add_argument("--vignettes", help="dev vignettes (default: the shared dev.jsonl, when on this machine)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    model = Path(args.model).resolve()
    if not model.exists():
        print(f"no model at {args.model}: run `make train` (make evaluate trains it when needed)", file=sys.stderr)
        return 2
    out_root = Path(args.out).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    before = previous_summary(out_root)
    stamp = _stamp()
    report = out_root / stamp
    n = 1
    while report.exists():
        n += 1
        report = out_root / f"{stamp}-{n}"
    report.mkdir()
    say(f"==> report folder {report}")
    steps: dict[str, float] = {}
    problems: list[str] = []

    say(f"==> NLU held-out evaluation (rasa test nlu on {Path(args.nlu).name}, in the background)...")
    nlu_proc = _rasa(
        [
            "test",
            "nlu",
            "--model",
            str(model),
            "--nlu",
            str(Path(args.nlu).resolve()),
            "--out",
            str(report / "nlu"),
            "--successes",
            "--no-plot",
        ],
        report / "nlu" / "rasa.log",
    )
    say("==> story tests (rasa test core on tests/stories, in the background)...")
    core_proc = _rasa(
        [
            "test",
            "core",
            "--model",
            str(model),
            "--stories",
            str(Path(args.stories).resolve()),
            "--out",
            str(report / "stories"),
            "--no-plot",
        ],
        report / "stories" / "rasa.log",
    )

    t = time.perf_counter()
    vignettes = Path(args.vignettes) if args.vignettes else default_path()
    say(
        "==> triage: dev vignettes, case set and triage holdout set..."
        if vignettes
        else "==> triage: case set and triage holdout set (no dev vignettes on this machine)..."
    )
    triage = triage_sets(vignettes)
    steps["triage scoring"] = time.perf_counter() - t
    for name, s in triage.items():
        say(f"    {name:8s} {s['result'].summary()}")

    t = time.perf_counter()
    err = _finish(*nlu_proc, report / "nlu" / "rasa.log", "rasa test nlu")
    if err:
        problems.append(err)
    nlu = read_nlu(report / "nlu")
    steps["NLU held-out (rasa test nlu, parallel)"] = time.perf_counter() - start
    if nlu.get("ok"):
        say(
            f"    NLU: intent accuracy {fmt(nlu['accuracy'])}, weighted F1 {fmt(nlu['weighted'].get('f1-score'))}"
            + (f"; FAQ answers weighted F1 {fmt(nlu['faq']['weighted'].get('f1-score'))}" if nlu.get("faq") else "")
        )
    err = _finish(*core_proc, report / "stories" / "rasa.log", "rasa test core")
    if err:
        problems.append(err)
    stories = read_stories(report / "stories")
    steps["story tests (rasa test core, parallel)"] = time.perf_counter() - start
    if stories.get("ok"):
        say(f"    stories: {stories['correct']}/{stories['total']} correct")

    say("==> plots and report...")
    t = time.perf_counter()
    if nlu.get("ok"):
        plot_confusion(nlu["predictions"], report / "intent_confusion.png")
        plot_f1(nlu["intents"], (nlu.get("faq") or {}).get("labels", []), report / "intent_f1.png")
    plot_levels(triage, report / "triage_levels.png")
    h = headline(nlu, stories, triage)
    changes = compare(before, h)
    steps["plots and page"] = time.perf_counter() - t
    meta = {
        "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "model": model.name,
        "git": git_revision(),
        "seconds": time.perf_counter() - start,
        "steps": steps,
    }
    summary = {
        "created": meta["created"],
        "model": model.name,
        "git": meta["git"],
        "headline": h,
        "dev_gate_ok": triage["dev"]["result"].ok if "dev" in triage else None,
        "triage": {name: s["result"].headline() for name, s in triage.items()},
        "problems": problems,
    }
    (report / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    page = render_html(
        {
            "meta": meta,
            "nlu": nlu,
            "stories": stories,
            "triage": triage,
            "changes": changes,
            "previous": before or {},
            "problems": problems,
            "known": known_misses(),
            "cards": cards(h, triage, stories),
        }
    )
    (report / "index.html").write_text(page, encoding="utf-8")
    how = update_latest(out_root, report)

    if changes:
        say("==> change since the previous report:")
        for r in changes:
            if r["arrow"] != "→":
                say(f"    {r['label']}: {fmt(r['before'])} {r['arrow']} {fmt(r['after'])} ({r['tone']})")
    for p in problems:
        say("!!! " + p.splitlines()[0])
    say(f"==> done in {time.perf_counter() - start:.0f} s")
    say(f"==> report: {report / 'index.html'}  (also {out_root / 'latest' / 'index.html'}, a {how})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
