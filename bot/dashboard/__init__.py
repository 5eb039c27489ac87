"""The nurses' web dashboard (server-rendered, mounted under /staff/ of the web app)."""

from .app import create_dashboard

__all__ = ["create_dashboard"]
