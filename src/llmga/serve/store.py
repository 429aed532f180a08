"""The session store: sessions, their turns and images, kept across restarts and crashes.

:class:`SessionStore` is the interface the studio uses; :class:`SQLiteStore`
is the embedded default (one SQLite file in WAL mode with full sync, plus a
folder of images named by content hash, see :mod:`llmga.serve.files`).
:func:`open_store` picks an implementation from a URL, the seam where a
PostgreSQL store would plug in.

Crash safety: an image file is written whole (temp file, fsync, rename) before
the row that refers to it is committed; a turn is recorded as ``pending`` when
it is submitted (so the user's message and uploads are never lost) and becomes
``done`` with its reply, prompts and images in one transaction. After a crash,
:meth:`SessionStore.recover` marks turns left ``pending`` as ``interrupted``
and removes temp files and images nothing refers to.

Undo hides a session's last turn (it stays in the database); a branch is a new
session holding copies of the done turns up to a chosen turn or image (images
are shared, never copied).
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from ..errors import InvalidInputError
from .files import BlobDir, check_hash
from .http_errors import ConflictError, NotFoundError

PENDING, DONE, FAILED, CANCELLED, INTERRUPTED = "pending", "done", "failed", "cancelled", "interrupted"
STATUSES = (PENDING, DONE, FAILED, CANCELLED, INTERRUPTED)
ROLES = ("input", "mask", "control", "output")


@dataclass
class ImageRef:
    """An image of a turn: what it is to the turn (``role``), its place, size and, for outputs, its prompt."""

    hash: str
    role: str
    position: int
    width: int
    height: int
    prompt: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass
class TurnRecord:
    """One exchange: what the user sent and asked for, and what came back."""

    id: str
    session_id: str
    seq: int
    status: str
    user_text: str
    request: dict[str, Any]
    reply_text: str = ""
    raw_reply: str = ""
    prompts: list[str] = field(default_factory=list)
    task: str | None = None
    route_reason: str | None = None
    notices: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error: str | None = None
    created: float = 0.0
    finished: float | None = None
    undone: bool = False
    images: list[ImageRef] = field(default_factory=list)

    def images_of(self, role: str) -> list[ImageRef]:
        return [ref for ref in self.images if ref.role == role]


@dataclass
class SessionRecord:
    """A conversation; ``turns`` counts its visible (not undone) turns."""

    id: str
    title: str
    created: float
    updated: float
    parent_session: str | None = None
    parent_turn: str | None = None
    turns: int = 0


@dataclass
class TurnOutcome:
    """What a finished turn produced; ``outputs`` are (image hash, prompt, metadata) in order."""

    reply_text: str
    raw_reply: str
    prompts: list[str]
    task: str | None = None
    route_reason: str | None = None
    notices: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    outputs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


class SessionStore(Protocol):
    """What the studio needs from a store (SQLite here; PostgreSQL or others behind the same methods)."""

    #: the folder the image files live in (a web server may serve them from there)
    files_root: Path

    def create_session(self, title: str = "") -> SessionRecord: ...
    def list_sessions(self, limit: int = 100, offset: int = 0) -> list[SessionRecord]: ...
    def get_session(self, session_id: str) -> SessionRecord: ...
    def rename_session(self, session_id: str, title: str) -> SessionRecord: ...
    def put_image(self, data: bytes) -> str: ...
    def has_image(self, digest: str) -> bool: ...
    def image_path(self, digest: str) -> Path: ...
    def begin_turn(self, session_id: str, user_text: str, request: dict[str, Any],
                   inputs: list[tuple[str, str]] = ()) -> TurnRecord: ...
    def finish_turn(self, turn_id: str, outcome: TurnOutcome) -> TurnRecord: ...
    def end_turn(self, turn_id: str, status: str, error: str) -> TurnRecord: ...
    def discard_turn(self, turn_id: str) -> None: ...
    def get_turn(self, turn_id: str) -> TurnRecord: ...
    def turns(self, session_id: str, include_undone: bool = False) -> list[TurnRecord]: ...
    def undo(self, session_id: str) -> TurnRecord: ...
    def branch(self, session_id: str, turn_id: str | None = None, image: str | None = None,
               title: str | None = None) -> SessionRecord: ...
    def recover(self) -> dict[str, int]: ...
    def close(self) -> None: ...


def open_store(location: str | Path) -> SessionStore:
    """Open the store at ``location``: a data folder, or ``sqlite:///path/to/folder``.

    ``postgresql://`` URLs are recognised but not implemented yet: a PostgreSQL
    store implements :class:`SessionStore` and is returned from here.
    """
    text = str(location)
    if text.startswith(("postgres://", "postgresql://")):
        raise InvalidInputError(
            "a PostgreSQL session store is not implemented yet; use a data folder (SQLite), "
            "or implement llmga.serve.store.SessionStore for it"
        )
    if text.startswith("sqlite:///"):  # sqlite:///relative/folder, sqlite:////absolute/folder
        text = text[len("sqlite:///"):]
    elif "://" in text:
        raise InvalidInputError(f"unknown store URL {text!r}; give a folder or sqlite:///FOLDER")
    return SQLiteStore(Path(text).expanduser())


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    parent_session TEXT,
    parent_turn TEXT
);
CREATE TABLE IF NOT EXISTS images (
    hash TEXT PRIMARY KEY,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    seq INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'cancelled', 'interrupted')),
    user_text TEXT NOT NULL,
    request TEXT NOT NULL,
    reply_text TEXT NOT NULL DEFAULT '',
    raw_reply TEXT NOT NULL DEFAULT '',
    prompts TEXT NOT NULL DEFAULT '[]',
    task TEXT,
    route_reason TEXT,
    notices TEXT NOT NULL DEFAULT '[]',
    errors TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    created REAL NOT NULL,
    finished REAL,
    undone INTEGER NOT NULL DEFAULT 0,
    UNIQUE (session_id, seq)
);
CREATE TABLE IF NOT EXISTS turn_images (
    turn_id TEXT NOT NULL REFERENCES turns(id),
    role TEXT NOT NULL CHECK (role IN ('input', 'mask', 'control', 'output')),
    position INTEGER NOT NULL,
    hash TEXT NOT NULL REFERENCES images(hash),
    prompt TEXT,
    metadata TEXT,
    PRIMARY KEY (turn_id, role, position)
);
CREATE INDEX IF NOT EXISTS turn_images_hash ON turn_images(hash);
CREATE INDEX IF NOT EXISTS sessions_updated ON sessions(updated);
"""

_TURN_COLUMNS = ("reply_text", "raw_reply", "prompts", "task", "route_reason", "notices", "errors")


class SQLiteStore:
    """The embedded store: ``studio.db`` (SQLite, WAL, synchronous=FULL) and ``images/`` in one folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._owner = _lock_folder(self.folder)
        self.blobs = BlobDir(self.folder / "images")
        self.files_root = self.blobs.root
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.folder / "studio.db", isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(_SCHEMA)

    # -- plumbing ---------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, rolled back on any error)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._owner is not None:
                self._owner.close()  # releases the folder lock
                self._owner = None

    # -- sessions ---------------------------------------------------------

    def create_session(self, title: str = "", parent_session: str | None = None,
                       parent_turn: str | None = None) -> SessionRecord:
        with self._tx() as db:
            session_id = self._insert_session(db, title, parent_session, parent_turn)
        return self.get_session(session_id)

    @staticmethod
    def _insert_session(db: sqlite3.Connection, title: str, parent_session: str | None,
                        parent_turn: str | None) -> str:
        now, session_id = time.time(), uuid.uuid4().hex
        db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                   (session_id, title or "new session", now, now, parent_session, parent_turn))
        return session_id

    _SESSION_SELECT = (
        "SELECT s.*, (SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id AND t.undone = 0) AS n "
        "FROM sessions s"
    )

    def list_sessions(self, limit: int = 100, offset: int = 0) -> list[SessionRecord]:
        rows = self._query(f"{self._SESSION_SELECT} ORDER BY s.updated DESC, s.id LIMIT ? OFFSET ?",
                           (limit, offset))
        return [_session(row) for row in rows]

    def get_session(self, session_id: str) -> SessionRecord:
        rows = self._query(f"{self._SESSION_SELECT} WHERE s.id = ?", (session_id,))
        if not rows:
            raise NotFoundError(f"no session {session_id!r}")
        return _session(rows[0])

    def rename_session(self, session_id: str, title: str) -> SessionRecord:
        self.get_session(session_id)
        with self._tx() as db:
            db.execute("UPDATE sessions SET title = ? WHERE id = ?", (title, session_id))
        return self.get_session(session_id)

    # -- images -----------------------------------------------------------

    def put_image(self, data: bytes) -> str:
        """Store a PNG durably (file first, then its row); return its content hash."""
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except Exception as exc:  # our own encoder wrote it; a failure here is a bug upstream
            raise InvalidInputError(f"not an image: {exc}") from exc
        digest = self.blobs.put(data)
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO images VALUES (?, ?, ?, ?, ?)",
                       (digest, width, height, len(data), time.time()))
        return digest

    def has_image(self, digest: str) -> bool:
        return bool(self._query("SELECT 1 FROM images WHERE hash = ?", (check_hash(digest),)))

    def image_path(self, digest: str) -> Path:
        """The file of a stored image (NotFoundError for anything the store does not know)."""
        path = self.blobs.path(digest)
        if not self.has_image(digest) or not path.is_file():
            raise NotFoundError(f"no such image: {digest}")
        return path

    # -- turns ------------------------------------------------------------

    def begin_turn(self, session_id: str, user_text: str, request: dict[str, Any],
                   inputs: list[tuple[str, str]] = ()) -> TurnRecord:
        """Record a submitted turn as pending, with its uploaded images ``(role, hash)``."""
        turn_id = uuid.uuid4().hex
        now = time.time()
        with self._tx() as db:
            self._session_row(db, session_id)
            busy = db.execute("SELECT id FROM turns WHERE session_id = ? AND status = ?",
                              (session_id, PENDING)).fetchone()
            if busy:
                raise ConflictError(f"a turn is still running in session {session_id}; wait for it or cancel it")
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE session_id = ?",
                             (session_id,)).fetchone()[0]
            db.execute(
                "INSERT INTO turns (id, session_id, seq, status, user_text, request, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (turn_id, session_id, seq, PENDING, user_text, json.dumps(request), now),
            )
            positions: dict[str, int] = {}
            for role, digest in inputs:
                self._link(db, turn_id, role, positions.setdefault(role, 0), digest)
                positions[role] += 1
            self._touch(db, session_id, now, title_from=user_text)
        return self.get_turn(turn_id)

    def finish_turn(self, turn_id: str, outcome: TurnOutcome) -> TurnRecord:
        """Record what a pending turn produced, all at once (its images must be stored already)."""
        now = time.time()
        with self._tx() as db:
            row = self._pending_row(db, turn_id)
            values = (outcome.reply_text, outcome.raw_reply, json.dumps(outcome.prompts), outcome.task,
                      outcome.route_reason, json.dumps(outcome.notices), json.dumps(outcome.errors))
            db.execute(
                f"UPDATE turns SET status = ?, finished = ?, {', '.join(f'{c} = ?' for c in _TURN_COLUMNS)} "
                "WHERE id = ?",
                (DONE, now, *values, turn_id),
            )
            for position, (digest, prompt, metadata) in enumerate(outcome.outputs):
                self._link(db, turn_id, "output", position, digest, prompt, metadata)
            self._touch(db, row["session_id"], now)
        return self.get_turn(turn_id)

    def end_turn(self, turn_id: str, status: str, error: str) -> TurnRecord:
        """End a pending turn without a result: ``failed``, ``cancelled`` or ``interrupted``."""
        if status not in (FAILED, CANCELLED, INTERRUPTED):
            raise ValueError(f"end_turn takes failed, cancelled or interrupted, not {status}")
        now = time.time()
        with self._tx() as db:
            row = self._pending_row(db, turn_id)
            db.execute("UPDATE turns SET status = ?, error = ?, finished = ? WHERE id = ?",
                       (status, error, now, turn_id))
            self._touch(db, row["session_id"], now)
        return self.get_turn(turn_id)

    def discard_turn(self, turn_id: str) -> None:
        """Delete a pending turn that never ran (its work was refused)."""
        with self._tx() as db:
            self._pending_row(db, turn_id)
            db.execute("DELETE FROM turn_images WHERE turn_id = ?", (turn_id,))
            db.execute("DELETE FROM turns WHERE id = ?", (turn_id,))

    def get_turn(self, turn_id: str) -> TurnRecord:
        rows = self._query("SELECT * FROM turns WHERE id = ?", (turn_id,))
        if not rows:
            raise NotFoundError(f"no turn {turn_id!r}")
        return self._with_images([_turn(rows[0])])[0]

    def turns(self, session_id: str, include_undone: bool = False) -> list[TurnRecord]:
        """The session's turns in order (undone ones only when asked)."""
        self.get_session(session_id)
        hidden = "" if include_undone else " AND undone = 0"
        rows = self._query(f"SELECT * FROM turns WHERE session_id = ?{hidden} ORDER BY seq", (session_id,))
        return self._with_images([_turn(row) for row in rows])

    def undo(self, session_id: str) -> TurnRecord:
        """Hide the session's last visible turn (a running one cannot be undone)."""
        with self._tx() as db:
            self._session_row(db, session_id)
            row = db.execute("SELECT id, status FROM turns WHERE session_id = ? AND undone = 0 "
                             "ORDER BY seq DESC LIMIT 1", (session_id,)).fetchone()
            if row is None:
                raise ConflictError("nothing to undo: the session has no turns")
            if row["status"] == PENDING:
                raise ConflictError("the last turn is still running; cancel it first")
            db.execute("UPDATE turns SET undone = 1 WHERE id = ?", (row["id"],))
            self._touch(db, session_id, time.time())
        return self.get_turn(row["id"])

    def branch(self, session_id: str, turn_id: str | None = None, image: str | None = None,
               title: str | None = None) -> SessionRecord:
        """A new session with copies of this session's done turns up to ``turn_id`` (or the one that painted ``image``).

        Branching from an image makes it the newest image of the branch, so a
        follow-up ("make it night") works on it. Without either, the whole
        session is copied.
        """
        source = self.get_session(session_id)
        done = [t for t in self.turns(session_id) if t.status == DONE]
        cut, focus = self._branch_point(done, turn_id, image)
        copies = done[: cut + 1] if cut is not None else done
        with self._tx() as db:  # all or nothing
            branch_id = self._insert_session(db, title or f"{source.title} (branch)", session_id,
                                             copies[-1].id if copies else None)
            for seq, turn in enumerate(copies, start=1):
                self._copy_turn(db, turn, branch_id, seq, focus if turn is copies[-1] else None)
        return self.get_session(branch_id)

    # -- recovery ---------------------------------------------------------

    def recover(self) -> dict[str, int]:
        """Tidy up after a crash; run before serving (no turn may be running).

        Turns left pending become ``interrupted``; temp files, image files
        with no row and image rows that no turn refers to are removed. Returns
        counts of what was done.
        """
        now = time.time()
        with self._tx() as db:
            interrupted = db.execute(
                "UPDATE turns SET status = ?, error = ?, finished = ? WHERE status = ?",
                (INTERRUPTED, "the server stopped while this turn was running; send it again", now, PENDING),
            ).rowcount
            unused = [r["hash"] for r in db.execute(
                "SELECT hash FROM images WHERE hash NOT IN (SELECT hash FROM turn_images)")]
            db.executemany("DELETE FROM images WHERE hash = ?", [(h,) for h in unused])
            known = {r["hash"] for r in db.execute("SELECT hash FROM images")}
        temp = self.blobs.sweep()
        orphans = self.blobs.hashes() - known - set(unused)
        for digest in orphans | set(unused):
            self.blobs.delete(digest)
        missing = sum(not self.blobs.path(h).is_file() for h in known)
        return {"interrupted": interrupted, "temp_files": temp, "orphan_files": len(orphans),
                "unused_images": len(unused), "missing_files": missing}

    # -- helpers ----------------------------------------------------------

    def _session_row(self, db: sqlite3.Connection, session_id: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no session {session_id!r}")
        return row

    def _pending_row(self, db: sqlite3.Connection, turn_id: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM turns WHERE id = ?", (turn_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no turn {turn_id!r}")
        if row["status"] != PENDING:
            raise ConflictError(f"turn {turn_id} is already {row['status']}")
        return row

    @staticmethod
    def _link(db: sqlite3.Connection, turn_id: str, role: str, position: int, digest: str,
              prompt: str | None = None, metadata: dict | None = None) -> None:
        if db.execute("SELECT 1 FROM images WHERE hash = ?", (check_hash(digest),)).fetchone() is None:
            raise NotFoundError(f"no such image: {digest}")
        db.execute("INSERT INTO turn_images VALUES (?, ?, ?, ?, ?, ?)",
                   (turn_id, role, position, digest, prompt, json.dumps(metadata) if metadata else None))

    @staticmethod
    def _touch(db: sqlite3.Connection, session_id: str, now: float, title_from: str | None = None) -> None:
        db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))
        if title_from:
            title = " ".join(title_from.split())[:60] or "new session"
            db.execute("UPDATE sessions SET title = ? WHERE id = ? AND title = 'new session'", (title, session_id))

    @staticmethod
    def _branch_point(done: list[TurnRecord], turn_id: str | None, image: str | None) -> tuple[int | None, str | None]:
        """Index of the last turn to copy, and the image to bring to the front (if any)."""
        if image is not None:
            check_hash(image)
            for index in range(len(done) - 1, -1, -1):
                if any(ref.hash == image for ref in done[index].images_of("output")):
                    if turn_id is not None and done[index].id != turn_id:
                        raise InvalidInputError("the image was not painted in that turn")
                    return index, image
            raise NotFoundError("no done turn of this session painted that image")
        if turn_id is None:
            return None, None
        for index, turn in enumerate(done):
            if turn.id == turn_id:
                return index, None
        raise NotFoundError(f"no done turn {turn_id!r} in this session")

    def _copy_turn(self, db: sqlite3.Connection, turn: TurnRecord, session_id: str, seq: int,
                   focus: str | None) -> None:
        new_id = uuid.uuid4().hex
        db.execute(
            "INSERT INTO turns (id, session_id, seq, status, user_text, request, "
            f"{', '.join(_TURN_COLUMNS)}, error, created, finished) VALUES ({', '.join('?' * 16)})",
            (new_id, session_id, seq, DONE, turn.user_text, json.dumps(turn.request), turn.reply_text,
             turn.raw_reply, json.dumps(turn.prompts), turn.task, turn.route_reason, json.dumps(turn.notices),
             json.dumps(turn.errors), turn.error, turn.created, turn.finished),
        )
        refs = list(turn.images)
        if focus is not None:  # the chosen output goes last: the conversation's newest image
            outputs = [r for r in refs if r.role == "output"]
            outputs.sort(key=lambda r: r.hash == focus)
            refs = [r for r in refs if r.role != "output"] + outputs
        positions: dict[str, int] = {}
        for ref in refs:
            self._link(db, new_id, ref.role, positions.setdefault(ref.role, 0), ref.hash, ref.prompt, ref.metadata)
            positions[ref.role] += 1

    def _with_images(self, turns: list[TurnRecord]) -> list[TurnRecord]:
        if not turns:
            return turns
        by_id = {t.id: t for t in turns}
        marks = ", ".join("?" * len(by_id))
        rows = self._query(
            "SELECT ti.*, i.width, i.height FROM turn_images ti JOIN images i ON i.hash = ti.hash "
            f"WHERE ti.turn_id IN ({marks}) ORDER BY ti.turn_id, ti.role, ti.position", tuple(by_id),
        )
        for row in rows:
            by_id[row["turn_id"]].images.append(ImageRef(
                row["hash"], row["role"], row["position"], row["width"], row["height"], row["prompt"],
                json.loads(row["metadata"]) if row["metadata"] else None,
            ))
        return turns


def _lock_folder(folder: Path) -> Any:
    """Hold ``folder/studio.lock`` for as long as the store is open, so no second studio uses the folder.

    Two studios on one folder would each take the other's running turns for
    debris when they recover. The lock is released by the OS if the process
    dies. Where ``fcntl`` is missing (Windows) nothing is locked.
    """
    try:
        import fcntl
    except ImportError:
        return None
    handle = open(folder / "studio.lock", "a+")  # noqa: SIM115 - held open until close()
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise ConflictError(f"the data folder {folder} is in use by another llmga studio ({owner})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def _session(row: sqlite3.Row) -> SessionRecord:
    return SessionRecord(row["id"], row["title"], row["created"], row["updated"], row["parent_session"],
                         row["parent_turn"], row["n"])


def _turn(row: sqlite3.Row) -> TurnRecord:
    return TurnRecord(
        id=row["id"], session_id=row["session_id"], seq=row["seq"], status=row["status"],
        user_text=row["user_text"], request=json.loads(row["request"]), reply_text=row["reply_text"],
        raw_reply=row["raw_reply"], prompts=json.loads(row["prompts"]), task=row["task"],
        route_reason=row["route_reason"], notices=json.loads(row["notices"]), errors=json.loads(row["errors"]),
        error=row["error"], created=row["created"], finished=row["finished"], undone=bool(row["undone"]),
    )
