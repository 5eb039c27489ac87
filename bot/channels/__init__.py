"""Channels that carry patients' messages in and the assistant's answers out."""
