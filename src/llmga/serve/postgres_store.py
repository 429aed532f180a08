"""The session store on PostgreSQL, shared by any number of studio processes on any machines.

Connections come from a pool (``psycopg_pool``) that checks each one before
use, so the store recovers by itself when the server restarts; while the
server cannot be reached every call raises
:class:`~llmga.serve.http_errors.StoreUnavailableError` (a 503 with
Retry-After). Rows a transaction decides on (a session's running turn, a
turn's status) are locked with ``FOR UPDATE``. Images are files in a folder
every process can reach (a shared disk).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from .http_errors import StoreUnavailableError
from .sql_store import SCHEMA, Db, SQLStore

#: seconds to wait for a connection before answering 503
CONNECT_SECONDS = 3.0


class PostgresStore(SQLStore):
    """Sessions in the PostgreSQL database at ``url``, images in the folder ``images``."""

    lock_rows = " FOR UPDATE"

    def __init__(self, url: str, images: str | Path, max_connections: int = 10, create_tables: bool = True) -> None:
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import PoolTimeout

        super().__init__(images)
        self.url = url
        self._errors = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
        try:  # one connection first: a wrong URL or a stopped server fails now, with the server's reason
            psycopg.connect(url, connect_timeout=int(CONNECT_SECONDS)).close()
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"cannot reach the PostgreSQL session store at {_safe(url)}: {exc}") from None
        self._sweeping = threading.Lock()
        self._pool = ConnectionPool(url, min_size=1, max_size=max_connections, timeout=CONNECT_SECONDS, open=True,
                                    kwargs={"row_factory": dict_row, "connect_timeout": int(CONNECT_SECONDS)},
                                    check=self._check, name="llmga-store")
        if create_tables:
            self._create_tables()

    def _create_tables(self) -> None:
        """Create the tables, or add what an older version lacks (one process at a time)."""
        with self._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(7356)")  # one process creates the tables at a time
            db.execute(SCHEMA)
            columns = db.execute("SELECT table_name, column_name FROM information_schema.columns "
                                 "WHERE table_schema = current_schema()").fetchall()
            present: dict[str, set[str]] = {}
            for row in columns:
                present.setdefault(row["table_name"], set()).add(row["column_name"])
            self._migrate(db, present)

    def _check(self, connection: Any) -> None:
        """The pool's check of a connection before it is handed out. When one is broken (the server
        restarted), the others are most likely broken too: they are all checked at once, in the background,
        rather than one by one as requests find them."""
        try:
            ConnectionPool.check_connection(connection)
        except Exception:
            if self._sweeping.acquire(blocking=False):
                threading.Thread(target=self._sweep, name="llmga-store-sweep", daemon=True).start()
            raise

    def _sweep(self) -> None:
        try:
            self._pool.check()
        finally:
            self._sweeping.release()

    @contextmanager
    def _transaction(self) -> Iterator[Db]:
        """A pooled connection in a transaction; an unreachable server is StoreUnavailableError."""
        try:
            with self._pool.connection() as connection, connection.transaction():
                yield Db(connection, "%s")
        except self._errors as exc:
            raise StoreUnavailableError(f"the session store (PostgreSQL) is unavailable: {exc}") from None

    def describe(self) -> str:
        return f"PostgreSQL {_safe(self.url)}"

    def close(self) -> None:
        self._pool.close()


def _safe(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
