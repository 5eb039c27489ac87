"""Rasa graph components that put the triage engine inside the NLU pipeline."""
