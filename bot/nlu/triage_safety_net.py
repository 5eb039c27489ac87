"""The deterministic safety net inside Rasa's NLU pipeline.

Runs after DIET and the FallbackClassifier. It asks the triage engine about every message and
  * adds one `symptom` entity per symptom the patient reports (negated, hypothetical and other
    people's symptoms are left out), so stories and the tracker can see them;
  * makes the intent `report_symptom` whenever the engine finds a symptom the patient reports,
    whatever DIET predicted (an FAQ, small talk, a low-confidence fallback), so a warning sign
    mixed into any message reaches the triage action in that same turn;
  * turns a low-confidence fallback on a bare number ("38.4", "2") into `inform`, an answer to
    the bot's last question.
DIET keeps the conversation moving; it never has the last word on a symptom.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.triage import RANK, engine

log = logging.getLogger(__name__)

SYMPTOM_INTENT = "report_symptom"
ANSWER_INTENT = "inform"
_HAS_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|half|none|yesterday|today)\b", re.I)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR],
    is_trainable=False,
)
class TriageSafetyNet(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"symptom_intent": SYMPTOM_INTENT, "answer_intent": ANSWER_INTENT, "override_below_level": None}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.config = {**self.get_default_config(), **(config or {})}
        self.engine = engine()  # builds the pipeline once, at model load

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "TriageSafetyNet":
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._process(message)
        return messages

    def _process(self, message: Message) -> None:
        text = message.get(TEXT) or ""
        try:
            decision = self.engine.triage(text)
        except Exception:  # never let the safety net break NLU; the action will retry and answer safely
            log.exception("triage engine failed in NLU (message id %s)", message.get("message_id"))
            self._set_intent(message, self.config["symptom_intent"])
            return
        reported = [f for f in decision.findings if f.counts and RANK[f.level] > RANK["info"]]
        entities = list(message.get(ENTITIES) or [])
        for f in reported:
            entities.append(
                {
                    "entity": "symptom",
                    "value": f.concept,
                    "start": f.start,
                    "end": f.end,
                    "confidence_entity": 1.0,
                    "extractor": self.__class__.__name__,
                }
            )
        message.set(ENTITIES, entities, add_to_output=True)
        message.set("triage", {"level": decision.level, "concepts": [f.concept for f in reported]}, add_to_output=True)
        if reported:
            self._set_intent(message, self.config["symptom_intent"])
            return
        current = (message.get(INTENT) or {}).get("name")
        if current in (None, "nlu_fallback", "out_of_scope") and _HAS_NUMBER.search(text):
            self._set_intent(message, self.config["answer_intent"])

    @staticmethod
    def _set_intent(message: Message, name: str) -> None:
        previous: Optional[dict] = message.get(INTENT)
        if previous and previous.get("name") == name:
            return
        top = {"name": name, "confidence": 1.0}
        ranking = [r for r in (message.get(INTENT_RANKING_KEY) or []) if r.get("name") != name]
        message.set(INTENT, top, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [top] + ranking, add_to_output=True)
