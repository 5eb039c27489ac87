"""The parts of bot/tools/evaluate.py that need no model: comparison, previous report, latest."""
from __future__ import annotations

import json

from bot.tools import evaluate


def test_compare_gives_arrows_and_knows_which_way_is_better():
    before = {"headline": {"nlu.intent_weighted_f1": 0.80, "triage.dev.under_triage": 0.01,
                           "triage.dev.accuracy": 0.95, "stories.conversation_accuracy": 1.0}}
    after = {k: None for k in evaluate.HEADLINES}
    after.update({"nlu.intent_weighted_f1": 0.85, "triage.dev.under_triage": 0.03,
                  "triage.dev.accuracy": 0.95, "stories.conversation_accuracy": None})
    rows = {r["label"]: r for r in evaluate.compare(before, after)}
    f1 = rows[evaluate.HEADLINES["nlu.intent_weighted_f1"][0]]
    assert (f1["arrow"], f1["tone"], f1["before"], f1["after"]) == ("↑", "better", 0.80, 0.85)
    under = rows[evaluate.HEADLINES["triage.dev.under_triage"][0]]
    assert (under["arrow"], under["tone"]) == ("↑", "worse")          # more under-triage is worse
    same = rows[evaluate.HEADLINES["triage.dev.accuracy"][0]]
    assert same["arrow"] == "→"
    gone = rows[evaluate.HEADLINES["stories.conversation_accuracy"][0]]
    assert gone["arrow"] == "?"
    assert evaluate.HEADLINES["nlu.intent_accuracy"][0] not in rows   # in neither report
    assert evaluate.compare(None, after) == []


def test_previous_summary_prefers_latest_then_the_newest_folder(tmp_path):
    assert evaluate.previous_summary(tmp_path) is None
    for name, value in (("20260101T000000Z", 0.1), ("20260301T000000Z", 0.3), ("20260201T000000Z", 0.2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({"headline": {"x": value}}))
    assert evaluate.previous_summary(tmp_path)["headline"]["x"] == 0.3
    evaluate.update_latest(tmp_path, tmp_path / "20260101T000000Z")
    assert evaluate.previous_summary(tmp_path)["headline"]["x"] == 0.1


def test_update_latest_repoints_the_link(tmp_path):
    a, b = tmp_path / "20260101T000000Z", tmp_path / "20260102T000000Z"
    for d in (a, b):
        d.mkdir()
        (d / "index.html").write_text(d.name)
    assert evaluate.update_latest(tmp_path, a) == "symlink"
    assert (tmp_path / "latest" / "index.html").read_text() == a.name
    evaluate.update_latest(tmp_path, b)
    assert (tmp_path / "latest" / "index.html").read_text() == b.name
    assert sorted(p.name for p in tmp_path.iterdir()) == [a.name, b.name, "latest"]


def test_case_rows_have_stable_ids_per_rule_family():
    rows, family = evaluate.case_rows()
    assert rows and len({r["id"] for r in rows}) == len(rows)
    assert all(r["id"].startswith(family[r["id"]] + "-") for r in rows)
    assert all(set(r["accept"]) and r["text"] for r in rows)
