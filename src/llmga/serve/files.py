"""Image files named by their content hash, written so that a crash never leaves half a file.

A file is written to a temporary name in its final folder, flushed to disk
(``fsync``), renamed into place (atomic on POSIX) and the folder is synced, so
after a crash a file either exists whole under its hash or not at all; stray
temporary files are removed by :meth:`BlobDir.sweep`.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

from ..atomic import TMP_PREFIX, write_atomically
from .http_errors import NotFoundError

HASH = re.compile(r"[0-9a-f]{64}")


def content_hash(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 lowercase hex digits: the file's name."""
    return hashlib.sha256(data).hexdigest()


def check_hash(value: str) -> str:
    """``value`` if it is a well-formed content hash, else NotFoundError (it names no file of ours)."""
    if not isinstance(value, str) or not HASH.fullmatch(value):
        raise NotFoundError("no such image: image names are 64 hex digits")
    return value


class BlobDir:
    """A folder of ``<hash>.png`` files, two hex digits of fan-out (``ab/abcd….png``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        """Where the file of ``digest`` lives (whether or not it exists)."""
        digest = check_hash(digest)
        return self.root / digest[:2] / f"{digest}.png"

    def put(self, data: bytes) -> str:
        """Store ``data`` durably under its hash; return the hash (a no-op when it is already there)."""
        digest = content_hash(data)
        path = self.path(digest)
        if path.exists():
            return digest
        write_atomically(path, data, durable=True)
        return digest

    def read(self, digest: str) -> bytes:
        path = self.path(digest)
        if not path.is_file():
            raise NotFoundError(f"no such image: {digest}")
        return path.read_bytes()

    def hashes(self) -> set[str]:
        """The hashes of every stored file."""
        return {p.stem for p in self.root.glob("??/*.png") if HASH.fullmatch(p.stem)}

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def age(self, digest: str) -> float:
        """Seconds since the file of ``digest`` was written (0 if it is gone)."""
        try:
            return time.time() - self.path(digest).stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def sweep(self, before: float | None = None) -> int:
        """Remove temporary files left by a crash mid-write (those older than ``before``, a Unix time, if
        given: other processes may be writing the newer ones); return how many."""
        stray = [p for p in self.root.glob(f"??/{TMP_PREFIX}*") if before is None or _mtime(p) < before]
        for path in stray:
            path.unlink(missing_ok=True)
        return len(stray)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")
