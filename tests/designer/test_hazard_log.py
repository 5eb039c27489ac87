"""The hazard log is fit to sign: every hazard has a control, every control a test that exists,
and the rendered Markdown is current. A broken reference fails `make validate` (and so make test)."""

import copy
import subprocess
import sys

from bot.settings import ROOT
from bot.tools import hazard_log


def test_the_shipped_hazard_log_names_only_tests_that_exist():
    doc = hazard_log.load()
    assert hazard_log.problems(doc) == []
    assert len(doc["hazards"]) >= 12
    wanted = ["negation", "complaint", "thresholds", "lost or delayed", "wrong people", "unavailable",
              "database is down", "forged", "fatigue", "stale advice", "stops answering"]
    titles = " ".join(h["title"].lower() for h in doc["hazards"])
    assert [w for w in wanted if w not in titles] == []


def test_a_control_naming_a_missing_test_or_a_hazard_without_control_is_refused():
    doc = copy.deepcopy(hazard_log.load())
    doc["hazards"][0]["controls"][0]["verified_by"].append("tests/triage/test_rule_families.py::test_gone")
    doc["hazards"][1]["controls"] = []
    doc["hazards"][2]["controls"][0]["verified_by"] = []
    found = hazard_log.problems(doc)
    assert any("no such test tests/triage/test_rule_families.py::test_gone" in p for p in found)
    assert any(p.startswith(f"{doc['hazards'][1]['id']}: no control") for p in found)
    assert any("no test verifies this control" in p for p in found)


def test_check_fails_on_a_broken_reference_and_on_a_stale_rendering(tmp_path, monkeypatch):
    broken = hazard_log.load()
    broken["hazards"][0]["controls"][0]["verified_by"] = ["tests/nowhere.py::test_nothing"]
    log = tmp_path / "hazard-log.yml"
    import yaml
    log.write_text(yaml.safe_dump(broken))
    monkeypatch.setattr(hazard_log, "LOG", log)
    monkeypatch.setattr(hazard_log, "RENDERED", tmp_path / "hazard-log.md")
    monkeypatch.setattr(hazard_log, "load", lambda path=log: yaml.safe_load(log.read_text()))
    assert hazard_log.main(["--check"]) == 1                  # broken reference (and not rendered yet)
    shipped = subprocess.run([sys.executable, "-m", "bot.tools.hazard_log", "--check"], cwd=ROOT,
                             capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert shipped.returncode == 0, shipped.stderr
