"""Which FAQ answer a question wants: a small linear model in place of Rasa's ResponseSelector.

Why not the ResponseSelector: it is a second TensorFlow model in the Rasa server (about 220 MB
resident and a TensorFlow call on every message) for a choice among some twenty-five answers with
a few hundred examples. Word and character n-gram TF-IDF with a logistic regression (scikit-learn,
already loaded for the triage engine) chooses as well on the held-out set and costs well under a
millisecond. It writes the same `response_selector` output as the ResponseSelector, so Rasa's
`utter_faq` action and `rasa test nlu`'s response-selection report work unchanged.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

import joblib
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import (
    RESPONSE_SELECTOR_PREDICTION_KEY,
    RESPONSE_SELECTOR_PROPERTY_NAME,
    RESPONSE_SELECTOR_RANKING_KEY,
    RESPONSE_SELECTOR_RESPONSES_KEY,
    RESPONSE_SELECTOR_RETRIEVAL_INTENTS,
    RESPONSE_SELECTOR_UTTER_ACTION_KEY,
)
from rasa.shared.nlu.constants import INTENT, INTENT_RESPONSE_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data import util
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

log = logging.getLogger(__name__)

_FILE = "faq_selector.joblib"


def _pipeline(config: Dict[Text, Any]):
    """TF-IDF on words (1-2) and on characters within words (2-5, for misspellings) into LR."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True)
    model = LogisticRegression(C=config["C"], max_iter=2000, random_state=config["random_seed"])
    return make_pipeline(make_union(words, chars), model)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FaqSelector(GraphComponent):
    """Chooses the `faq/...` answer; the intent itself stays DIET's (and the safety net's)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"retrieval_intent": "faq", "C": 20.0, "random_seed": 42, "ranking_length": 10}

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Any = None,
        responses: Optional[Dict[Text, Any]] = None,
        retrieval_intents: Optional[List[Text]] = None,
    ) -> None:
        self.config = {**self.get_default_config(), **(config or {})}
        self._storage = model_storage
        self._resource = resource
        self.model = model
        self.responses = responses or {}
        self.retrieval_intents = retrieval_intents or []

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "FaqSelector":
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "FaqSelector":
        try:
            with model_storage.read_from(resource) as folder:
                saved = joblib.load(folder / _FILE)
        except (ValueError, FileNotFoundError):
            log.warning("no trained FAQ selector in the model; FAQ answers are off until retraining")
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, saved["model"], saved["responses"], saved["retrieval_intents"])

    def train(self, training_data: TrainingData) -> Resource:
        examples = [
            m
            for m in training_data.intent_examples
            if m.get(INTENT) == self.config["retrieval_intent"] and m.get(INTENT_RESPONSE_KEY)
        ]
        self.retrieval_intents = sorted(training_data.retrieval_intents)
        self.responses = dict(training_data.responses)
        if len({m.get(INTENT_RESPONSE_KEY) for m in examples}) >= 2:
            self.model = _pipeline(self.config).fit(
                [m.get(TEXT) for m in examples], [m.get(INTENT_RESPONSE_KEY) for m in examples]
            )
        with self._storage.write_to(self._resource) as folder:
            joblib.dump(
                {"model": self.model, "responses": self.responses, "retrieval_intents": self.retrieval_intents},
                folder / _FILE,
            )
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        if self.model is None:
            return messages
        texts = [m.get(TEXT) or "" for m in messages]
        for message, probabilities in zip(messages, self.model.predict_proba(texts)):
            self._set_prediction(message, probabilities)
        return messages

    def _set_prediction(self, message: Message, probabilities: Any) -> None:
        """The ResponseSelector's output shape, so `utter_faq` and `rasa test nlu` read it."""
        order = probabilities.argsort()[::-1][: self.config["ranking_length"]]
        labels = self.model.classes_
        key = str(labels[order[0]])
        utter = util.intent_response_key_to_template_key(key)
        ranking = [
            {"id": int(i), PREDICTED_CONFIDENCE_KEY: float(probabilities[i]), INTENT_RESPONSE_KEY: str(labels[i])}
            for i in order
        ]
        prediction = {
            RESPONSE_SELECTOR_PREDICTION_KEY: {
                RESPONSE_SELECTOR_RESPONSES_KEY: self.responses.get(utter, [{TEXT: key}]),
                PREDICTED_CONFIDENCE_KEY: float(probabilities[order[0]]),
                INTENT_RESPONSE_KEY: key,
                RESPONSE_SELECTOR_UTTER_ACTION_KEY: utter,
            },
            RESPONSE_SELECTOR_RANKING_KEY: ranking,
        }
        properties = dict(message.get(RESPONSE_SELECTOR_PROPERTY_NAME) or {})
        properties[RESPONSE_SELECTOR_RETRIEVAL_INTENTS] = self.retrieval_intents
        properties[self.config["retrieval_intent"]] = prediction
        message.set(RESPONSE_SELECTOR_PROPERTY_NAME, properties, add_to_output=True)
