"""HSG aftercare triage assistant: the clinical core (triage), the conversation, escalation and channels."""

import os

# TensorFlow (pulled in by Rasa, and probed by spaCy's thinc) is chatty at INFO level.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
