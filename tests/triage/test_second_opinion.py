"""The learned second opinion may only raise the rules' level, within its cap and thresholds."""
import json
from pathlib import Path

import pytest
import yaml

from bot.triage import RANK, TriageEngine
from bot.triage import second_opinion as so
from bot.triage.knowledge_base import KNOWLEDGE_DIR

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def rules_only():
    return TriageEngine(learned=False)


def _texts():
    out = []
    for path in sorted((HERE / "cases").glob("*.yml")):
        out += [c["text"] for c in yaml.safe_load(path.read_text())]
    for path in sorted((HERE / "sets").glob("*/*.jsonl")):
        out += [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    return out


def test_the_engine_has_a_second_opinion(engine):
    assert engine.second_opinion is not None
    assert set(engine.second_opinion.models) == {"red_flag", "complaint", "emergency"}


def test_it_never_lowers_and_never_passes_its_cap(engine, rules_only):
    cap = RANK[so.Settings.load(KNOWLEDGE_DIR / "learned.yml").max_level]
    raised = 0
    for text in _texts():
        rules, both = rules_only.triage(text), engine.triage(text)
        assert RANK[both.level] >= RANK[rules.level], text
        if both.level != rules.level:
            raised += 1
            assert RANK[both.level] <= cap, text
            assert any("learned second opinion" in r for r in both.reasons), text
    assert raised < 0.05 * len(_texts())


def test_the_fast_scorer_gives_sklearns_probabilities(engine):
    model = engine.second_opinion
    for text in _texts()[:200]:
        words = engine.extractor.norms(text)
        fast, slow = model.probabilities(text, words), model.sklearn_probabilities(text, words)
        assert fast == pytest.approx(slow, abs=1e-9)


def _toy(tmp_path, threshold=0.5, cap="urgent", extra=()):
    """A second opinion trained on a tiny made-up set, to see what it may and may not do."""
    rows = ([{"text": f"my zorblax is {w} today", "accept": ["urgent"]} for w in ("bad", "worse", "awful")] * 20
            + [{"text": f"what is a {w}", "accept": ["info"]} for w in ("pad", "test", "dye")] * 20 + list(extra))
    data = tmp_path / "toy.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    learned = tmp_path / "learned.yml"
    learned.write_text(yaml.safe_dump({"max_level": cap, "training": [str(data)], "heads": {
        "red_flag": {"raise_to": "urgent", "threshold": threshold},
        "complaint": {"raise_to": "routine", "applies_below": "self_care", "threshold": threshold}}}))
    return so.build(learned, KNOWLEDGE_DIR, str.lower, cache_dir=tmp_path / "cache", root=Path("/"))


def test_a_raise_names_itself_and_stays_within_the_head(tmp_path):
    model = _toy(tmp_path)
    raised = model.opinion("my zorblax is dreadful today", "my zorblax is dreadful today", "info")
    assert raised and raised[0] == "urgent" and "red_flag" in raised[1]
    assert model.opinion("my zorblax is dreadful today", "", "emergency") is None     # never lowers
    assert model.opinion("what is a pad", "what is a pad", "info") is None


def test_a_threshold_no_probability_reaches_never_raises(tmp_path):
    model = _toy(tmp_path, threshold=1.01)
    assert model.opinion("my zorblax is dreadful today", "my zorblax is dreadful today", "info") is None


def test_a_head_above_the_cap_is_refused(tmp_path):
    learned = tmp_path / "learned.yml"
    learned.write_text(yaml.safe_dump({"max_level": "routine", "training": [], "heads": {
        "red_flag": {"raise_to": "urgent", "threshold": 0.5}}}))
    with pytest.raises(ValueError, match="above the cap"):
        so.Settings.load(learned)


def test_the_model_is_cached_by_what_it_is_trained_from(tmp_path):
    _toy(tmp_path)
    cached = list((tmp_path / "cache").glob("second-opinion-*.pkl"))
    assert len(cached) == 1
    _toy(tmp_path, extra=[{"text": "my zorblax hurts", "accept": ["urgent"]}])
    assert len(list((tmp_path / "cache").glob("second-opinion-*.pkl"))) == 2


@pytest.mark.parametrize("text", [
    "pain is a 3 out of ten",                       # a reading: the thresholds decide
    "not nauseous any more, that passed",           # a symptom the rules set aside
    "what if I get a fever tonight?",
])
def test_it_is_not_consulted_where_the_rules_have_something_to_go_by(engine, rules_only, text):
    assert engine.triage(text).level == rules_only.triage(text).level


def test_the_emergency_head_acts_only_on_a_red_flag_already_found(tmp_path):
    rows = ([{"text": f"my zorblax is {w} and blue", "accept": ["emergency"]} for w in ("bad", "worse")] * 20
            + [{"text": f"my zorblax is {w}", "accept": ["urgent"]} for w in ("sore", "red")] * 20
            + [{"text": f"what is a {w}", "accept": ["info"]} for w in ("pad", "test")] * 20)
    data = tmp_path / "toy.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    learned = tmp_path / "learned.yml"
    learned.write_text(yaml.safe_dump({"max_level": "emergency", "training": [str(data)], "heads": {
        "emergency": {"raise_to": "emergency", "applies_from": "urgent", "threshold": 0.5}}}))
    model = so.build(learned, KNOWLEDGE_DIR, str.lower, cache_dir=tmp_path / "cache", root=Path("/"))
    text = "my zorblax is awful and blue"
    assert model.opinion(text, text, "urgent")[0] == "emergency"
    assert model.opinion(text, text, "self_care") is None
    assert model.opinion(text, text, "info") is None
