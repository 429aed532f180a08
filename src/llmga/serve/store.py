"""The session store: sessions, their turns and images, kept across restarts and crashes.

:class:`SessionStore` is the interface the studio uses; :func:`open_store`
picks its implementation from a location: a data folder (or
``sqlite:///FOLDER``) for the embedded SQLite store
(:mod:`llmga.serve.sqlite_store`), or a ``postgresql://`` URL for a store that
many studio processes share (:mod:`llmga.serve.postgres_store`, with its images
in a folder they all reach). Both are :class:`~llmga.serve.sql_store.SQLStore`
and pass the same tests. The records they keep are in :mod:`llmga.serve.session_records`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidInputError
from .session_records import (  # noqa: F401  (the store's vocabulary, re-exported)
    CANCELLED,
    DONE,
    FAILED,
    INTERRUPTED,
    PENDING,
    ROLES,
    STATUSES,
    ImageRef,
    SessionRecord,
    TurnOutcome,
    TurnRecord,
)
from .sqlite_store import SQLiteStore


class SessionStore(Protocol):
    """What the studio needs from a store (see :class:`~llmga.serve.sql_store.SQLStore` for what each does)."""

    #: the folder the image files live in (a web server may serve them from there)
    files_root: Path

    def create_session(self, title: str = "") -> SessionRecord: ...
    def list_sessions(self, limit: int = 100, offset: int = 0) -> list[SessionRecord]: ...
    def get_session(self, session_id: str) -> SessionRecord: ...
    def rename_session(self, session_id: str, title: str) -> SessionRecord: ...
    def delete_session(self, session_id: str) -> int: ...
    def expire(self, before: float) -> list[str]: ...
    def put_image(self, data: bytes) -> str: ...
    def has_image(self, digest: str) -> bool: ...
    def session_has_image(self, session_id: str, digest: str) -> bool: ...
    def image_path(self, digest: str) -> Path: ...
    def begin_turn(self, session_id: str, user_text: str, request: dict[str, Any],
                   inputs: list[tuple[str, str]] = ()) -> TurnRecord: ...
    def add_done_turns(self, session_id: str, turns: list[tuple[str, TurnOutcome]]) -> None: ...
    def finish_turn(self, turn_id: str, outcome: TurnOutcome) -> TurnRecord: ...
    def end_turn(self, turn_id: str, status: str, error: str, code: str | None = None) -> TurnRecord: ...
    def discard_turn(self, turn_id: str) -> None: ...
    def get_turn(self, turn_id: str) -> TurnRecord: ...
    def turns(self, session_id: str, include_undone: bool = False) -> list[TurnRecord]: ...
    def pending_turns(self, before: float) -> list[str]: ...
    def undo(self, session_id: str) -> TurnRecord: ...
    def branch(self, session_id: str, turn_id: str | None = None, image: str | None = None,
               title: str | None = None) -> SessionRecord: ...
    def secret(self, name: str) -> str: ...
    def recover(self, turns: bool = True, grace: float = 0.0) -> dict[str, int]: ...
    def describe(self) -> str: ...
    def close(self) -> None: ...


def is_shared(location: str | Path) -> bool:
    """Whether ``location`` names a store several studio processes can share (PostgreSQL)."""
    return str(location).startswith(("postgres://", "postgresql://"))


def open_store(location: str | Path, images: str | Path | None = None) -> SessionStore:
    """Open the store at ``location``: a data folder, ``sqlite:///FOLDER``, or ``postgresql://…`` with the
    folder ``images`` for the image files."""
    text = str(location)
    if is_shared(text):
        if images is None:
            raise InvalidInputError("a PostgreSQL store keeps its images in a folder: give one (--data-dir)")
        from .postgres_store import PostgresStore

        return PostgresStore(text, images)
    if text.startswith("sqlite:///"):  # sqlite:///relative/folder, sqlite:////absolute/folder
        text = text[len("sqlite:///"):]
    elif "://" in text:
        raise InvalidInputError(f"unknown store URL {text!r}; give a folder, sqlite:///FOLDER or postgresql://…")
    return SQLiteStore(Path(text).expanduser())
