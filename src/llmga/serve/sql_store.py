"""The session store in SQL: one schema and one set of queries for SQLite and PostgreSQL.

:class:`SQLStore` holds everything but the connection: subclasses
(:class:`~llmga.serve.sqlite_store.SQLiteStore`,
:class:`~llmga.serve.postgres_store.PostgresStore`) say how a transaction and a
query reach their database, and how a query marks its parameters. Images are
files named by their content hash in a :class:`~llmga.serve.files.BlobDir`
(a folder several machines may share).

Crash safety: an image file is written whole (temp file, fsync, rename) before
the row that refers to it is committed; a turn is recorded as ``pending`` when
it is submitted (so the user's message and uploads are never lost) and becomes
``done`` with its reply, prompts and images in one transaction. A turn found
``interrupted`` (its runner stopped, see :meth:`SQLStore.recover`) can still
be finished when its result arrives after all: nothing completed is lost.

Undo hides a session's last turn (it stays in the database); a branch is a new
session holding copies of the done turns up to a chosen turn or image (images
are shared, never copied). Deleting a session deletes its turns and the images
no other session uses.
"""

from __future__ import annotations

import io
import json
import secrets
import time
import uuid
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import InvalidInputError
from .files import BlobDir, check_hash
from .http_errors import ConflictError, NotFoundError
from .session_records import (
    CANCELLED,
    DONE,
    FAILED,
    INTERRUPTED,
    PENDING,
    ImageRef,
    SessionRecord,
    TurnOutcome,
    TurnRecord,
)

Row = Any  # a mapping of column names to values (sqlite3.Row, or a dict from psycopg)

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    updated DOUBLE PRECISION NOT NULL,
    parent_session TEXT,
    parent_turn TEXT
);
CREATE TABLE IF NOT EXISTS images (
    hash TEXT PRIMARY KEY,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    created DOUBLE PRECISION NOT NULL
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
    created DOUBLE PRECISION NOT NULL,
    finished DOUBLE PRECISION,
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
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turn_images_hash ON turn_images(hash);
CREATE INDEX IF NOT EXISTS sessions_updated ON sessions(updated);
CREATE UNIQUE INDEX IF NOT EXISTS one_pending_turn ON turns(session_id) WHERE status = 'pending';
"""
#: columns added since the first schema: (table, column, type)
ADDED_COLUMNS = [("turns", "error_code", "TEXT")]

_TURN_COLUMNS = ("reply_text", "raw_reply", "prompts", "task", "route_reason", "notices", "errors")
_SESSION_SELECT = (
    "SELECT s.*, (SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id AND t.undone = 0) AS n FROM sessions s"
)
#: images written this recently are left alone by deletions (a turn may be about to use them: images are
#: shared by content, so the same picture painted in another session is the same row)
FRESH_SECONDS = 10.0


class Db:
    """A connection inside a transaction, with the queries' ``?`` marks turned into the driver's own."""

    def __init__(self, connection: Any, mark: str) -> None:
        self.connection, self.mark = connection, mark

    def execute(self, sql: str, args: tuple = ()) -> Any:
        sql = sql.replace("?", self.mark)
        return self.connection.execute(sql, args) if args else self.connection.execute(sql)


class SQLStore:
    """Sessions, turns and images in SQL; a subclass provides :meth:`_transaction` (and may lock rows)."""

    #: added to a SELECT whose rows the transaction must hold until it ends ("" where writers are serialised)
    lock_rows = ""

    def __init__(self, images: str | Path) -> None:
        self.blobs = BlobDir(images)
        #: the folder the image files live in (a web server may serve them from there)
        self.files_root = self.blobs.root

    # -- plumbing (subclasses) ---------------------------------------------

    def _transaction(self) -> AbstractContextManager[Db]:
        """A transaction: committed when the block ends, rolled back on any error."""
        raise NotImplementedError

    def _query(self, sql: str, args: tuple = ()) -> list[Row]:
        with self._transaction() as db:
            return db.execute(sql, args).fetchall()

    def _migrate(self, db: Db, present: dict[str, set[str]]) -> None:
        """Add the columns missing from an older database (``present``: the columns of each table)."""
        for table, column, kind in ADDED_COLUMNS:
            if column not in present.get(table, set()):
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        raise NotImplementedError

    # -- sessions ---------------------------------------------------------

    def create_session(self, title: str = "") -> SessionRecord:
        with self._transaction() as db:
            session_id = self._insert_session(db, title, None, None)
        return self.get_session(session_id)

    @staticmethod
    def _insert_session(db: Db, title: str, parent_session: str | None, parent_turn: str | None) -> str:
        now, session_id = time.time(), uuid.uuid4().hex
        db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                   (session_id, title or "new session", now, now, parent_session, parent_turn))
        return session_id

    def list_sessions(self, limit: int = 100, offset: int = 0) -> list[SessionRecord]:
        rows = self._query(f"{_SESSION_SELECT} ORDER BY s.updated DESC, s.id LIMIT ? OFFSET ?", (limit, offset))
        return [_session(row) for row in rows]

    def get_session(self, session_id: str) -> SessionRecord:
        rows = self._query(f"{_SESSION_SELECT} WHERE s.id = ?", (session_id,))
        if not rows:
            raise NotFoundError(f"no session {session_id!r}")
        return _session(rows[0])

    def rename_session(self, session_id: str, title: str) -> SessionRecord:
        with self._transaction() as db:
            self._session_row(db, session_id)
            db.execute("UPDATE sessions SET title = ? WHERE id = ?", (title, session_id))
        return self.get_session(session_id)

    def delete_session(self, session_id: str) -> int:
        """Delete a session, its turns, and the images no other session uses; return how many images went.

        Images written in the last :data:`FRESH_SECONDS` stay for :meth:`recover`
        to sweep (a turn of another session may be about to use the same picture).
        """
        with self._transaction() as db:
            self._session_row(db, session_id)
            its_turns = "SELECT id FROM turns WHERE session_id = ?"
            hashes = [r["hash"] for r in db.execute(
                f"SELECT DISTINCT hash FROM turn_images WHERE turn_id IN ({its_turns})", (session_id,)).fetchall()]
            db.execute(f"DELETE FROM turn_images WHERE turn_id IN ({its_turns})", (session_id,))
            db.execute("DELETE FROM turns WHERE session_id = ?", (session_id,))
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            unused = self._drop_unused_images(db, hashes, time.time() - FRESH_SECONDS)
        for digest in unused:  # after the commit: a rolled-back deletion keeps its files
            self.blobs.delete(digest)
        return len(unused)

    def expire(self, before: float) -> list[str]:
        """Delete the sessions untouched since ``before`` (a Unix time) that run nothing; their ids."""
        rows = self._query(
            "SELECT id FROM sessions s WHERE updated < ? AND NOT EXISTS "
            "(SELECT 1 FROM turns t WHERE t.session_id = s.id AND t.status = ?)", (before, PENDING))
        gone = []
        for row in rows:
            try:
                self.delete_session(row["id"])
            except NotFoundError:  # deleted meanwhile (another studio process)
                continue
            gone.append(row["id"])
        return gone

    # -- images -----------------------------------------------------------

    def put_image(self, data: bytes) -> str:
        """Store a PNG durably (file first, then its row); return its content hash."""
        try:
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                width, height = image.size
        except Exception as exc:  # our own encoder wrote it; a failure here is a bug upstream
            raise InvalidInputError(f"not a PNG image: {exc}") from exc
        digest = self.blobs.put(data)
        with self._transaction() as db:
            db.execute("INSERT INTO images VALUES (?, ?, ?, ?, ?) ON CONFLICT (hash) DO UPDATE SET created = ?",
                       (digest, width, height, len(data), time.time(), time.time()))
        return digest

    def has_image(self, digest: str) -> bool:
        return bool(self._query("SELECT 1 FROM images WHERE hash = ?", (check_hash(digest),)))

    def session_has_image(self, session_id: str, digest: str) -> bool:
        """Whether a turn of ``session_id`` holds the image (uploaded to it or painted in it)."""
        return bool(self._query(
            "SELECT 1 FROM turn_images ti JOIN turns t ON t.id = ti.turn_id WHERE t.session_id = ? AND ti.hash = ?",
            (session_id, check_hash(digest))))

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
        with self._transaction() as db:
            self._session_row(db, session_id)
            busy = db.execute("SELECT id FROM turns WHERE session_id = ? AND status = ?",
                              (session_id, PENDING)).fetchone()
            if busy:
                raise ConflictError(f"a turn is still running in session {session_id}; wait for it or cancel it")
            self._insert_turn(db, session_id, turn_id, PENDING, user_text, request, now, inputs)
            self._touch(db, session_id, now, title_from=user_text)
        return self.get_turn(turn_id)

    def add_done_turns(self, session_id: str, turns: list[tuple[str, TurnOutcome]]) -> None:
        """Record finished exchanges ``(user text, outcome)`` at once (a client's earlier history)."""
        now = time.time()
        with self._transaction() as db:
            self._session_row(db, session_id)
            for user_text, outcome in turns:
                turn_id = uuid.uuid4().hex
                self._insert_turn(db, session_id, turn_id, DONE, user_text, {"imported": True}, now)
                self._record_outcome(db, turn_id, outcome, now)
            if turns:
                self._touch(db, session_id, now, title_from=turns[0][0])

    def finish_turn(self, turn_id: str, outcome: TurnOutcome) -> TurnRecord:
        """Record what a pending (or interrupted) turn produced, all at once (its images must be stored already)."""
        now = time.time()
        with self._transaction() as db:
            row = self._turn_row(db, turn_id, (PENDING, INTERRUPTED))
            self._record_outcome(db, turn_id, outcome, now)
            self._touch(db, row["session_id"], now)
        return self.get_turn(turn_id)

    def end_turn(self, turn_id: str, status: str, error: str, code: str | None = None) -> TurnRecord:
        """End a pending turn without a result: ``failed``, ``cancelled`` or ``interrupted`` (``code``: the kind)."""
        if status not in (FAILED, CANCELLED, INTERRUPTED):
            raise ValueError(f"end_turn takes failed, cancelled or interrupted, not {status}")
        now = time.time()
        with self._transaction() as db:
            row = self._turn_row(db, turn_id, (PENDING,))
            db.execute("UPDATE turns SET status = ?, error = ?, error_code = ?, finished = ? WHERE id = ?",
                       (status, error, code or status, now, turn_id))
            self._touch(db, row["session_id"], now)
        return self.get_turn(turn_id)

    def discard_turn(self, turn_id: str) -> None:
        """Delete a pending turn that never ran (its work was refused)."""
        with self._transaction() as db:
            self._turn_row(db, turn_id, (PENDING,))
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

    def pending_turns(self, before: float) -> list[str]:
        """The ids of the turns pending since before ``before`` (a Unix time)."""
        return [r["id"] for r in self._query("SELECT id FROM turns WHERE status = ? AND created < ?",
                                             (PENDING, before))]

    def undo(self, session_id: str) -> TurnRecord:
        """Hide the session's last visible turn (a running one cannot be undone)."""
        with self._transaction() as db:
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
        cut, focus = _branch_point(done, turn_id, image)
        copies = done[: cut + 1] if cut is not None else done
        with self._transaction() as db:  # all or nothing
            branch_id = self._insert_session(db, title or f"{source.title} (branch)", session_id,
                                             copies[-1].id if copies else None)
            for seq, turn in enumerate(copies, start=1):
                self._copy_turn(db, turn, branch_id, seq, focus if turn is copies[-1] else None)
        return self.get_session(branch_id)

    # -- keeping order ----------------------------------------------------

    def secret(self, name: str) -> str:
        """A random secret made once and kept in the store (shared by every studio process using it)."""
        with self._transaction() as db:
            db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                       (name, secrets.token_hex(32)))
        return self._query("SELECT value FROM meta WHERE name = ?", (name,))[0]["value"]

    def recover(self, turns: bool = True, grace: float = 0.0) -> dict[str, int]:
        """Tidy up after a crash: pending turns become ``interrupted`` (unless not ``turns``), and files and
        image rows nothing refers to are removed, if older than ``grace`` seconds (other processes sharing
        the store may be writing the newer ones). Returns counts of what was done."""
        now = time.time()
        with self._transaction() as db:
            interrupted = 0
            if turns:
                interrupted = db.execute(
                    "UPDATE turns SET status = ?, error = ?, error_code = ?, finished = ? WHERE status = ?",
                    (INTERRUPTED, "the server stopped while this turn was running; send it again", INTERRUPTED,
                     now, PENDING)).rowcount
            candidates = [r["hash"] for r in db.execute(
                "SELECT hash FROM images WHERE hash NOT IN (SELECT hash FROM turn_images)").fetchall()]
            unused = self._drop_unused_images(db, candidates, now - grace)
            known = {r["hash"] for r in db.execute("SELECT hash FROM images").fetchall()}
        temp = self.blobs.sweep(now - grace)
        orphans = {h for h in self.blobs.hashes() - known - set(unused) if self.blobs.age(h) > grace}
        for digest in orphans | set(unused):
            self.blobs.delete(digest)
        missing = sum(not self.blobs.path(h).is_file() for h in known)
        return {"interrupted": interrupted, "temp_files": temp, "orphan_files": len(orphans),
                "unused_images": len(unused), "missing_files": missing}

    # -- helpers ----------------------------------------------------------

    def _session_row(self, db: Db, session_id: str) -> Row:
        row = db.execute(f"SELECT * FROM sessions WHERE id = ?{self.lock_rows}", (session_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no session {session_id!r}")
        return row

    def _turn_row(self, db: Db, turn_id: str, statuses: tuple[str, ...]) -> Row:
        row = db.execute(f"SELECT * FROM turns WHERE id = ?{self.lock_rows}", (turn_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no turn {turn_id!r}")
        if row["status"] not in statuses:
            raise ConflictError(f"turn {turn_id} is already {row['status']}")
        return row

    def _insert_turn(self, db: Db, session_id: str, turn_id: str, status: str, user_text: str,
                     request: dict[str, Any], now: float, inputs: list[tuple[str, str]] = ()) -> None:
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM turns WHERE session_id = ?",
                         (session_id,)).fetchone()["next"]
        db.execute("INSERT INTO turns (id, session_id, seq, status, user_text, request, created) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (turn_id, session_id, seq, status, user_text, json.dumps(request), now))
        positions: dict[str, int] = {}
        for role, digest in inputs:
            self._link(db, turn_id, role, positions.setdefault(role, 0), digest)
            positions[role] += 1

    def _record_outcome(self, db: Db, turn_id: str, outcome: TurnOutcome, now: float) -> None:
        values = (outcome.reply_text, outcome.raw_reply, json.dumps(outcome.prompts), outcome.task,
                  outcome.route_reason, json.dumps(outcome.notices), json.dumps(outcome.errors))
        db.execute(
            f"UPDATE turns SET status = ?, finished = ?, error = NULL, error_code = NULL, "
            f"{', '.join(f'{c} = ?' for c in _TURN_COLUMNS)} WHERE id = ?",
            (DONE, now, *values, turn_id),
        )
        for position, (digest, prompt, metadata) in enumerate(outcome.outputs):
            self._link(db, turn_id, "output", position, digest, prompt, metadata)

    @staticmethod
    def _link(db: Db, turn_id: str, role: str, position: int, digest: str,
              prompt: str | None = None, metadata: dict | None = None) -> None:
        if db.execute("SELECT 1 FROM images WHERE hash = ?", (check_hash(digest),)).fetchone() is None:
            raise NotFoundError(f"no such image: {digest}")
        db.execute("INSERT INTO turn_images VALUES (?, ?, ?, ?, ?, ?)",
                   (turn_id, role, position, digest, prompt, json.dumps(metadata) if metadata else None))

    @staticmethod
    def _drop_unused_images(db: Db, hashes: list[str], written_before: float) -> list[str]:
        """Delete the rows of those images no turn uses that were written before ``written_before``."""
        gone = []
        for digest in hashes:
            if db.execute("DELETE FROM images WHERE hash = ? AND created < ? AND NOT EXISTS "
                          "(SELECT 1 FROM turn_images WHERE hash = ?)",
                          (digest, written_before, digest)).rowcount:
                gone.append(digest)
        return gone

    @staticmethod
    def _touch(db: Db, session_id: str, now: float, title_from: str | None = None) -> None:
        db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))
        if title_from:
            title = " ".join(title_from.split())[:60] or "new session"
            db.execute("UPDATE sessions SET title = ? WHERE id = ? AND title = 'new session'", (title, session_id))

    def _copy_turn(self, db: Db, turn: TurnRecord, session_id: str, seq: int, focus: str | None) -> None:
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


def _session(row: Row) -> SessionRecord:
    return SessionRecord(row["id"], row["title"], row["created"], row["updated"], row["parent_session"],
                         row["parent_turn"], row["n"])


def _turn(row: Row) -> TurnRecord:
    return TurnRecord(
        id=row["id"], session_id=row["session_id"], seq=row["seq"], status=row["status"],
        user_text=row["user_text"], request=json.loads(row["request"]), reply_text=row["reply_text"],
        raw_reply=row["raw_reply"], prompts=json.loads(row["prompts"]), task=row["task"],
        route_reason=row["route_reason"], notices=json.loads(row["notices"]), errors=json.loads(row["errors"]),
        error=row["error"], error_code=row["error_code"], created=row["created"], finished=row["finished"],
        undone=bool(row["undone"]),
    )
