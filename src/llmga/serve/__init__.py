"""The studio: an HTTP API (OpenAI-compatible plus sessions) over a session store that survives crashes.

- :mod:`.store`: the store's interface and :func:`open_store`; :mod:`.session_records` what it keeps;
  :mod:`.sql_store` the store in SQL, on :mod:`.sqlite_store` (embedded) or :mod:`.postgres_store` (shared);
  :mod:`.files` images as files named by their hash;
- :mod:`.jobs`: the bounded in-process job queue; :mod:`.broker`, :mod:`.broker_queue`, :mod:`.broker_worker`:
  jobs through Redis (rq) to ``llmga worker`` processes; :mod:`.runner`: running one turn, wherever;
- :mod:`.studio`: turns of sessions, from submission to the stored result;
- :mod:`.app`, :mod:`.openai_routes`, :mod:`.session_routes`, :mod:`.bodies`, :mod:`.answers`, :mod:`.views`:
  the FastAPI application; :mod:`.security` (token, cross-site requests, body limits), :mod:`.uploads`
  (checked images), :mod:`.budget` (a memory ceiling), :mod:`.image_urls` (capability URLs),
  :mod:`.read_timeout` (slow clients), :mod:`.http_errors`; :mod:`.web` the Gradio web app;
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
