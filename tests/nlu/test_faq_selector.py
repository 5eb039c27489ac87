"""bot/nlu/faq_selector.py: picks the faq/... answer and writes what Rasa's utter_faq reads."""
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.faq_selector import FaqSelector

QUESTIONS = {
    "faq/bath": ["can I have a bath", "is a bath ok after the test", "when can I take a bath",
                 "bath tonight alright?", "can i soak in the tub"],
    "faq/sex": ["when can we have sex", "is sex ok after the hsg", "when can we try for a baby",
                "can we sleep together tonight", "intercourse after the test?"],
}


def _data() -> TrainingData:
    examples = [Message(data={"text": q, "intent": "faq", "intent_response_key": key})
                for key, qs in QUESTIONS.items() for q in qs]
    examples.append(Message(data={"text": "hello", "intent": "greet"}))
    responses = {f"utter_{key}": [{"text": f"answer to {key}"}] for key in QUESTIONS}
    return TrainingData(training_examples=examples, responses=responses)


def _selector(tmp_path, load=False):
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    resource = Resource("faq_selector")
    if load:
        return FaqSelector.load(FaqSelector.get_default_config(), storage, resource, context)
    return FaqSelector.create(FaqSelector.get_default_config(), storage, resource, context)


def test_trained_persisted_and_loaded_it_answers_in_the_response_selector_shape(tmp_path):
    _selector(tmp_path).train(_data())
    selector = _selector(tmp_path, load=True)
    [bath, sex] = selector.process([Message(data={"text": "am I allowed a bath tonight"}),
                                    Message(data={"text": "when is it ok to have sex again"})])
    for message, key in ((bath, "faq/bath"), (sex, "faq/sex")):
        out = message.get("response_selector")
        assert out["all_retrieval_intents"] == ["faq"]
        chosen = out["faq"]["response"]
        assert chosen["intent_response_key"] == key
        assert chosen["utter_action"] == f"utter_{key}"
        assert chosen["responses"] == [{"text": f"answer to {key}"}]
        assert 0.5 < chosen["confidence"] <= 1.0
        assert [r["intent_response_key"] for r in out["faq"]["ranking"]][0] == key


def test_without_a_trained_model_it_leaves_messages_alone(tmp_path):
    selector = _selector(tmp_path, load=True)
    [message] = selector.process([Message(data={"text": "can I have a bath"})])
    assert message.get("response_selector") is None
