"""One test per rule family, on sentences written for these tests, with exact expectations."""
import pytest

from bot.triage import Context, Finding


def findings(engine, text, concept=None):
    return [f for f in engine.triage(text).findings if concept is None or f.concept == concept]


# -- negation -------------------------------------------------------------------------------
@pytest.mark.parametrize("text,concept", [
    ("no temperature and no shivers", "chills"),
    ("I haven't been sick at all", "vomiting"),
    ("it doesn't stink or anything", "foul_discharge"),
    ("there isn't any heavy bleeding", "heavy_bleeding"),
    ("the cramps are fine now", "cramping"),
])
def test_negated_symptoms_are_marked_and_do_not_count(engine, text, concept):
    found = findings(engine, text, concept)
    assert found and all(f.negated and not f.counts for f in found)


def test_negation_stops_at_but(level):
    assert level("no chills but I've got a fever") == "urgent"
    assert level("not bleeding heavily, only spotting") == "self_care"


def test_an_answer_no_is_not_a_negation(level):
    assert level("no, I have chills and I'm freezing") == "urgent"


# -- hypothetical / general questions vs reports in question form ----------------------------
@pytest.mark.parametrize("text", [
    "what if my temperature goes up tonight?",
    "should I ring you if I start vomiting?",
    "how long does the spotting usually last?",
    "is a fever common after this test?",
])
def test_hypotheticals_are_info(level, text):
    assert level(text) == "info"


@pytest.mark.parametrize("text,expected", [
    ("is it normal to have a fever of 38.6?", "urgent"),
    ("is it ok that I keep throwing up?", "urgent"),
    ("is it normal that I'm still spotting?", "self_care"),
])
def test_reports_in_question_form_count(level, text, expected):
    assert level(text) == expected


# -- experiencer -----------------------------------------------------------------------------
def test_partner_reports_count_as_the_patient(engine):
    d = engine.triage("my wife is burning up and shaking since her scan")
    assert d.level == "urgent"
    assert any(f.proxy and f.counts for f in d.findings)


def test_someone_elses_past_does_not_count(engine):
    d = engine.triage("my cousin had a temperature after hers but she was fine")
    assert d.level == "info"
    assert all(f.other_experiencer for f in d.findings if f.concept in ("fever", "raised_temperature"))


def test_a_man_in_the_house_is_not_the_patient(level):
    assert level("my husband has a fever, can he catch something from me?") == "info"


# -- temperature thresholds ------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("thermometer says 37.9", "self_care"),
    ("thermometer says 38.0", "urgent"),
    ("temperature 37,9", "self_care"),
    ("temperature 38,0", "urgent"),
    ("my temp is 100.3F", "self_care"),
    ("my temp is 100.4F", "urgent"),
    ("it reads 100.3 degrees", "self_care"),
    ("it reads 100.4 degrees", "urgent"),
    ("101 degrees", "urgent"),
    ("38.5C", "urgent"),
])
def test_fever_threshold_at_the_boundary(level, text, expected):
    assert level(text) == expected


def test_feeling_hot_counts_as_possible_fever_even_with_a_lower_reading(engine):
    d = engine.triage("I feel hot and clammy but the thermometer says 37.4")
    assert d.level == "urgent"
    assert any("counts as a possible fever" in r for r in d.reasons)


def test_a_reading_brought_down_by_paracetamol_still_counts(level):
    assert level("it was 38.4 this morning, took paracetamol and now it's 37.2") == "urgent"


def test_a_reading_decides_for_have_a_temperature(level):
    assert level("I have a temperature") == "urgent"
    assert level("I have a temperature of 37.1") == "self_care"


# -- pain ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected,score", [
    ("cramps, 6/10", "self_care", 6),
    ("cramps, 7/10", "urgent", 7),
    ("the pain is about seven out of ten", "urgent", 7),
    ("my cramps are a 4 out of 10", "self_care", 4),
])
def test_pain_scores(engine, text, expected, score):
    d = engine.triage(text)
    assert d.level == expected
    assert d.values.pain_score == score


def test_worsening_and_unrelieved_pain_are_warning_signs(level):
    assert level("the cramping keeps getting worse") == "urgent"
    assert level("paracetamol isn't touching the pain") == "urgent"
    assert level("the cramps aren't getting any worse, ibuprofen helps") == "self_care"


# -- bleeding and pads -----------------------------------------------------------------------
@pytest.mark.parametrize("text,expected,rate", [
    ("bleeding, 3 pads in 2 hours", "urgent", 1.5),
    ("bleeding and I change a pad every 30 minutes", "urgent", 2),
    ("a pad an hour since this afternoon", "urgent", 1),
    ("bleeding, 1 pad in 4 hours", "self_care", 0.25),
])
def test_pad_counts(engine, text, expected, rate):
    d = engine.triage(text)
    assert d.level == expected
    assert d.values.pads_per_hour == pytest.approx(rate)


def test_heavy_bleeding_with_dizziness_is_an_emergency(level):
    assert level("soaking through pads and I feel really lightheaded") == "emergency"


# -- durations -------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("light spotting for 2 days", "self_care"),
    ("light spotting for 4 days", "routine"),
    ("sticky discharge, it's been a week", "routine"),
    ("mild cramps since yesterday", "self_care"),
    ("mild cramps, day 3 after the test", "routine"),
])
def test_effects_beyond_their_window_are_routine(level, text, expected):
    assert level(text) == expected


def test_days_since_the_procedure_from_context(engine):
    ctx = Context(days_since_procedure=5)
    assert engine.triage("some spotting", ctx).level == "routine"
    assert engine.triage("some spotting").level == "self_care"


# -- misspellings ----------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("feaver", "urgent"),
    ("vommiting", "urgent"),
    ("diziness", "self_care"),
    ("craping since the test", "self_care"),
    ("temprature 38.9", "urgent"),
    ("I never had this before, just cramps", "self_care"),   # "never" is not "fever"
])
def test_misspellings(level, text, expected):
    assert level(text) == expected


def test_corrections_are_recorded_for_the_nurse(engine):
    f = engine.triage("chils").findings[0]
    assert f.concept == "chills" and f.values["read_as"] == {"chils": "chills"}


# -- several symptoms ------------------------------------------------------------------------
def test_the_most_urgent_symptom_wins(engine):
    d = engine.triage("mild cramps, some sticky discharge, a bit dizzy and I threw up")
    assert d.level == "urgent"
    assert {f.concept for f in d.findings if f.counts} >= {"cramping", "discharge", "dizziness", "vomiting"}
    assert d.reasons[0].startswith("Vomiting")


def test_emergency_outweighs_everything(level):
    assert level("spotting, cramps, and now my lips are going puffy") == "emergency"


# -- context from earlier in the conversation ------------------------------------------------
def test_a_bare_answer_is_read_with_the_question_asked(engine):
    bleeding = engine.triage("I'm bleeding").findings
    ctx = Context(earlier_findings=bleeding, expecting="pads_per_hour")
    d = engine.triage("2", ctx)
    assert d.level == "urgent"
    assert d.values.pads_per_hour == 2


def test_a_pregnancy_test_mentioned_earlier_combines_with_later_pain(engine):
    earlier = [f for f in engine.triage("my pregnancy test was positive").findings]
    d = engine.triage("now I have a sharp pain low on my left side", Context(earlier_findings=earlier))
    assert d.level in ("urgent", "emergency")
    assert any("pregnancy" in r.lower() for r in d.reasons)


def test_earlier_findings_roundtrip_through_dicts(engine):
    f = engine.triage("I feel sick").findings[0]
    assert Finding.from_dict(f.to_dict()) == f


# -- the quick-reply buttons of the follow-up questions read as meant ------------------------
@pytest.mark.parametrize("question,setup,expected", [
    ("pads_per_hour", "I'm bleeding", ["self_care", "urgent", "urgent"]),
    ("pain_score", "I have cramps", ["self_care", "self_care", "urgent"]),
    ("painkillers_help", "I have cramps", ["self_care", "urgent"]),
])
def test_follow_up_buttons_mean_what_they_say(engine, question, setup, expected):
    from bot.conversation import replies

    earlier = [f for f in engine.triage(setup).findings if f.counts]
    buttons = replies()["questions"][question]["buttons"]
    got = [engine.triage(payload, Context(earlier_findings=earlier, expecting=question)).level
           for _title, payload in buttons]
    assert got == expected


@pytest.mark.parametrize("answer,rate", [("less than one pad in the last hour", 0.5), ("under 1", 0.5),
                                         ("not even one", 0.5), ("2", 2), ("none", 0)])
def test_bare_pad_answers(engine, answer, rate):
    earlier = [f for f in engine.triage("I'm bleeding").findings]
    d = engine.triage(answer, Context(earlier_findings=earlier, expecting="pads_per_hour"))
    assert d.values.pads_per_hour == rate


def test_unquoted_yes_no_in_a_knowledge_list_is_refused(tmp_path):
    """YAML turns bare yes/no/off into booleans; the loader must say so, not match 'True'."""
    import shutil

    from bot.triage import knowledge_base
    shutil.copytree(knowledge_base.KNOWLEDGE_DIR, tmp_path / "k")
    values = tmp_path / "k" / "values.yml"
    values.write_text(values.read_text().replace('["yes", yeah', "[yes, yeah"))
    with pytest.raises(knowledge_base.KnowledgeError, match="quotes"):
        knowledge_base.load(tmp_path / "k")
