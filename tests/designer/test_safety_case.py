"""The safety case page: built from the hazard log and a test run, honest about what did not pass,
and readable in headless Chromium."""

import pytest

from bot.tools import hazard_log, safety_case
from support.browser import chromium

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.triage.test_rule_families" name="test_negation_stops_at_but" time="0.1"/>
<testcase classname="tests.e2e.test_failures" name="test_action_server_killed_a_red_flag_still_gets_its_answer" time="9">
<failure message="boom">boom</failure></testcase>
<testcase classname="tests.escalation.test_targets" name="test_a_flood_from_one_channel_is_recorded_but_alerted_after_the_others[sqlite]" time="1"/>
<testcase classname="tests.escalation.test_targets" name="test_a_flood_from_one_channel_is_recorded_but_alerted_after_the_others[postgres]" time="1">
<skipped message="no postgres"/></testcase>
</testsuite></testsuites>"""

SETS = [{"name": "q", "date": "2026-11-29", "voice": "v", "first": "n=200 redflag_sensitivity=0.966 emergency_sensitivity=0.786",
         "now": "n=200 redflag_sensitivity=1.000 emergency_sensitivity=1.000",
         "first_figures": {"redflag_sensitivity": 0.966, "emergency_sensitivity": 0.786},
         "now_figures": {"redflag_sensitivity": 1.0, "emergency_sensitivity": 1.0}}]


def build(tmp_path, monkeypatch):
    (tmp_path / "tests.xml").write_text(JUNIT)
    monkeypatch.setattr(safety_case, "case_set_rows", lambda: SETS)
    monkeypatch.setattr(safety_case, "dev_line", lambda: "n=96 accuracy=1.000 redflag_sensitivity=1.000 (44/44)")
    code = safety_case.main(["--no-run", "--out", str(tmp_path)])
    return code, (tmp_path / "index.html").read_text()


def test_results_fold_parameters_and_keep_the_worst():
    import pathlib
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        junit = pathlib.Path(d) / "t.xml"
        junit.write_text(JUNIT)
        got = safety_case.results(junit)
    assert got["tests/triage/test_rule_families.py::test_negation_stops_at_but"] == "passed"
    assert got["tests/e2e/test_failures.py::test_action_server_killed_a_red_flag_still_gets_its_answer"] == "failed"
    flood = "tests/escalation/test_targets.py::test_a_flood_from_one_channel_is_recorded_but_alerted_after_the_others"
    assert got[flood] == "skipped"


def test_the_page_says_what_was_not_verified_and_that_the_sheet_is_unsigned(tmp_path, monkeypatch):
    code, page = build(tmp_path, monkeypatch)
    assert code == 1                                  # most named tests were not run here: not a pass
    assert "NOT verified" in page and "NOT SIGNED" in page and "not run" in page
    assert "n=96 accuracy=1.000" in page and "redflag_sensitivity=0.966" in page
    for h in hazard_log.load()["hazards"]:
        assert f'id="{h["id"]}"' in page
    assert "<script" not in page.lower()


@pytest.mark.browser
def test_the_page_opens_in_chromium(tmp_path, monkeypatch):
    _, _ = build(tmp_path, monkeypatch)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto((tmp_path / "index.html").as_uri())
        assert page.locator("h1").inner_text() == "Clinical safety case"
        assert page.locator("svg.plot rect").count() == 2
        page.screenshot(path=str(tmp_path / "safety-case.png"), full_page=False)
    assert errors == []
