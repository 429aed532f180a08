"""Writing a file whole or not at all.

The bytes go to a uniquely named temporary file in the target's folder, which
is renamed onto the target (atomic on POSIX), so a reader or a crash never
sees half a file and two writers never share a temporary file. ``durable``
also flushes the file and its folder to disk before returning.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

#: how temporary files begin (a folder's sweeper may remove leftovers by it)
TMP_PREFIX = ".tmp-"


def write_atomically(path: str | Path, data: bytes, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` (its folder made if missing) whole or not at all; ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own, opened only if new; unlike mkstemp's, the file gets the umask's usual permissions
    tmp = path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}-{path.name}")
    try:
        with open(tmp, "xb") as file:
            file.write(data)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
