"""The channel-neutral patient gateway: every patient channel (web page, REST, Telegram) goes
through it, so each gets the same guards and the same safety answer when Rasa is unavailable."""

from .gateway import Inbound, PatientGateway, Reply

__all__ = ["Inbound", "PatientGateway", "Reply"]
