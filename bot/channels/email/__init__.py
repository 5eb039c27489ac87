"""Staff alerts by email (SMTP, standard library)."""

from .notifier import EmailNotifier

__all__ = ["EmailNotifier"]
