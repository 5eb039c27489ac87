"""Rasa custom actions: thin adapters over bot.conversation, bot.triage and bot.escalation."""
