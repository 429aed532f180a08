"""The embedded session store: ``studio.db`` (SQLite, WAL, synchronous=FULL) and ``images/`` in one folder.

One studio process owns the folder at a time (a lock file says which), so
:meth:`~llmga.serve.sql_store.SQLStore.recover` may treat every pending turn as
its own.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .http_errors import ConflictError
from .sql_store import SCHEMA, Db, SQLStore


class SQLiteStore(SQLStore):
    """Sessions in ``FOLDER/studio.db``, images in ``FOLDER/images``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._owner = _lock_folder(self.folder)
        super().__init__(self.folder / "images")
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.folder / "studio.db", isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(SCHEMA)
        with self._transaction() as db:
            self._migrate(db, {table: {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
                               for table in ("turns",)})

    @contextmanager
    def _transaction(self) -> Iterator[Db]:
        """BEGIN IMMEDIATE … COMMIT (one writer at a time), rolled back on any error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield Db(self._db, "?")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def describe(self) -> str:
        return f"SQLite {self.folder / 'studio.db'}"

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._owner is not None:
                self._owner.close()  # releases the folder lock
                self._owner = None


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
