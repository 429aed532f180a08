"""The studio: an HTTP API (OpenAI-compatible plus sessions) over a session store that survives crashes.

- :mod:`.store`: sessions, turns and images (SQLite + content-addressed files), undo, branches, recovery;
- :mod:`.jobs`: the bounded job queue the painters run in;
- :mod:`.studio`: turns of sessions, from submission to the stored result;
- :mod:`.app`, :mod:`.openai_routes`, :mod:`.session_routes`: the FastAPI application;
- :mod:`.server`: :func:`run_server`, what ``llmga serve`` runs.

Its settings (:class:`~llmga.settings.ServeConfig`, :class:`~llmga.settings.Limits`) live in :mod:`llmga.settings`.
"""

from .store import SessionStore, SQLiteStore, open_store

__all__ = ["SQLiteStore", "SessionStore", "Studio", "create_app", "open_store", "run_server"]


def __getattr__(name: str):
    """The heavier parts (FastAPI, torch through the assistant) load on first use."""
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "run_server":
        from .server import run_server

        return run_server
    if name == "Studio":
        from .studio import Studio

        return Studio
    raise AttributeError(name)
