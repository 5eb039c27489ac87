"""Telegram, with python-telegram-bot 22: alerts in the nurses' staff chat, and (gateway.py) patients."""
