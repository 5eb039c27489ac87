"""`python -m bot triage`: the command line takes the engine's decision path and prints JSON."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import vignettes_dir

ROOT = Path(__file__).resolve().parent.parent


def run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_one_message_prints_the_decision_as_json():
    p = run("triage", "my temperature is 38.3 and I have cramps")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["level"] == "urgent"
    assert {f["concept"] for f in d["findings"]} >= {"cramping"}
    assert d["values"]["temperature_c"] == 38.3
    assert any("38.3" in r for r in d["reasons"])


def test_jsonl_in_and_out(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "text": "no fever, just tired"},
        {"id": "b", "text": "I passed out in the shower"},
        {"id": "c", "text": "what time do you open?"},
    ]) + "\n")
    p = run("triage", "--jsonl", str(src))
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert [(r["id"], r["level"]) for r in rows] == [("a", "self_care"), ("b", "emergency"), ("c", "info")]


def test_jsonl_from_stdin_with_full_decisions():
    p = run("triage", "--jsonl", "-", "--full", stdin=json.dumps({"id": 7, "text": "vomited twice"}) + "\n")
    row = json.loads(p.stdout)
    assert row["id"] == 7 and row["level"] == "urgent" and row["findings"][0]["concept"] == "vomiting"


def test_a_malformed_line_is_a_clear_error(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"id": 1, "text": "fine"}\nnot json\n')
    p = run("triage", "--jsonl", str(src))
    assert p.returncode == 2
    assert "line 2" in p.stderr


def test_validate_passes_on_the_shipped_knowledge():
    p = run("validate")
    assert p.returncode == 0, p.stderr
    assert "knowledge files OK" in p.stdout


@pytest.mark.skipif(vignettes_dir() is None, reason="the shared dev vignettes are not on this machine")
def test_dev_vignettes_safety_gate(tmp_path):
    """Red-flag and emergency sensitivity 1.000 on the clinician's dev vignettes (scored, never copied)."""
    vignettes = vignettes_dir()
    pred = tmp_path / "pred.jsonl"
    p = run("triage", "--jsonl", str(vignettes / "dev.jsonl"))
    assert p.returncode == 0, p.stderr
    pred.write_text(p.stdout)
    s = subprocess.run([sys.executable, str(vignettes / "score.py"), str(vignettes / "dev.jsonl"), str(pred),
                        "--min-redflag-sensitivity", "1.0", "--min-accuracy", "0.95"],
                       capture_output=True, text=True)
    summary = s.stdout.strip().splitlines()[-1]
    print(summary)
    assert s.returncode == 0, s.stdout
    assert "emergency_sensitivity=1.000" in summary
