"""The case-set tool: the merge settles disagreements on the safer side; a new set is scored by
an engine whose learned second opinion has never seen it."""
import json

import pytest

from bot.tools import case_sets


def test_disagreements_go_to_the_safer_side():
    w = {"id": "x1", "text": "t", "level": "routine", "accept": ["routine"]}
    r = {"id": "x1", "level": "urgent", "accept": ["urgent", "routine"]}
    merged = case_sets.merge_row(w, r)
    assert merged["level"] == "urgent" and merged["accept"] == ["urgent", "routine"]
    r = {"id": "x1", "level": "urgent", "accept": ["urgent"]}
    assert case_sets.merge_row(w, r)["accept"] == ["urgent"]      # a red flag to either stays one


def test_a_new_set_is_scored_from_outside_the_training_files(tmp_path, monkeypatch):
    row = {"id": "z1", "text": "I fainted", "level": "emergency", "accept": ["emergency"]}
    for name in ("writer", "reader"):
        (tmp_path / f"{name}.jsonl").write_text(json.dumps(row) + "\n")
    sets = tmp_path / "sets"
    sets.mkdir()
    monkeypatch.setattr(case_sets, "SETS_DIR", sets)
    monkeypatch.setattr(case_sets, "REGISTRY", tmp_path / "sets.yml")
    (tmp_path / "sets.yml").write_text("sets:\n")
    scored = []

    def fake_score(path, rules_only=False):
        scored.append(path)
        assert sets not in path.parents, "scored from inside the training folder"
        assert not (sets / "zz").exists(), "the set is in place before it was scored"
        return "n=1 accuracy=1.000", []

    monkeypatch.setattr(case_sets, "score_line", fake_score)
    case_sets.first_sight("zz", tmp_path / "writer.jsonl", tmp_path / "reader.jsonl", "test voice")
    assert len(scored) == 2 and (sets / "zz" / "zz.jsonl").exists()
    assert "first_sight" in (tmp_path / "sets.yml").read_text()
    with pytest.raises(SystemExit):
        case_sets.first_sight("zz", tmp_path / "writer.jsonl", tmp_path / "reader.jsonl", "again")
