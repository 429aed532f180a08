"""Ask a brain each distinct question once: answers persist in an SQLite file.

A request's key is a hash of everything that decides the answer: the brain's
identity, the messages, the pixels of each image and the sampling settings.
An answer is stored only once the brain has finished it, each in its own
transaction, so an interrupted run loses at most the answer in progress and a
rerun resumes where it stopped. Many data builders (and many runs) can share
one cache file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from PIL import Image

from ..brain import Brain, BrainRequest, complete


def image_digest(image: Image.Image) -> str:
    """A hash of an image's pixels (mode, size and bytes), the same however it was stored."""
    digest = hashlib.sha256(f"{image.mode}:{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def brain_identity(brain: Brain) -> str:
    """A stable name for the model behind ``brain`` (not its device or server address)."""
    name = getattr(brain, "name", None)
    model = getattr(brain, "model", None)
    if isinstance(name, str) and name:
        return name
    if isinstance(model, str) and model:
        return model
    return brain.describe()


class AnswerCache:
    """A persistent map from request keys to answers (SQLite; ``":memory:"`` for none on disk)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        if str(path) != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT NOT NULL)")
        self._db.commit()

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, answer: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO answers (key, answer) VALUES (?, ?)", (key, answer))

    def delete(self, key: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM answers WHERE key = ?", (key,))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        self._db.close()


class CachedBrain:
    """A :class:`~llmga.brain.Brain` that answers repeated requests from an :class:`AnswerCache`.

    ``identity`` names the model in the cache key (default :func:`brain_identity`);
    ``asked`` and ``reused`` count requests sent to the brain and answered from the cache.
    The brain's own ``system_prompt`` (the one it was trained under) is passed on,
    so an assistant asks the cached brain as it would ask the brain itself.
    """

    def __init__(self, brain: Brain, cache: AnswerCache | None = None, identity: str | None = None) -> None:
        self.brain = brain
        self.cache = cache if cache is not None else AnswerCache()
        self.identity = identity or brain_identity(brain)
        self.multimodal = brain.multimodal
        self.end_markers = tuple(brain.end_markers)
        self.system_prompt = getattr(brain, "system_prompt", None)
        self.asked = 0
        self.reused = 0

    def describe(self) -> str:
        return f"{self.brain.describe()} (cached in {self.cache.path})"

    def key(self, request: BrainRequest) -> str:
        """The cache key of one request."""
        content = {
            "brain": self.identity,
            "messages": list(request.messages),
            "images": [image_digest(image) for image in request.images],
            "settings": asdict(request.settings),
            "prefill": request.prefill,
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def stream(self, request: BrainRequest) -> Iterator[str]:
        """The cached answer, or the brain's answer (stored once complete)."""
        key = self.key(request)
        answer = self.cache.get(key)
        if answer is None:
            answer = complete(self.brain, request)
            self.cache.put(key, answer)
            self.asked += 1
        else:
            self.reused += 1
        yield answer

    def forget(self, request: BrainRequest) -> None:
        """Drop the cached answer to this request (an answer found unusable), so a rerun asks again."""
        self.cache.delete(self.key(request))
