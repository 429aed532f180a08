"""Keeping a reply to the letter scripts of its conversation, token by token.

A small model may break into letters of a script nobody used ("I can'אים a
cat"). Where a :class:`~llmga.brain.base.BrainRequest` names the scripts a
reply may use, a local brain gives every token holding letters of another
script no chance at all. :class:`ScriptMask` works the masks out once per
vocabulary and per set of scripts.

A token may hold only the first bytes of a letter (byte-level vocabularies
spell "П" in two tokens). Such a token is judged by the letters its lead byte
can begin: a lead byte that begins only Cyrillic letters is Cyrillic; one
whose letters include an allowed script stays allowed.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_atomically
from ..checkpoints import cache_dir
from ..retry import scripts

#: names a stored table's layout and the rules that made it: raise it when either changes, so old tables go unused
TABLE_VERSION = 1


@dataclass(frozen=True)
class TokenScripts:
    """The scripts of a token's whole letters, and those its unfinished last letter may belong to."""

    whole: frozenset[str]
    unfinished: frozenset[str] = frozenset()

    def outside(self, allowed: frozenset[str]) -> bool:
        """Whether the token holds, or begins, a letter of a script not in ``allowed``."""
        return bool(self.whole - allowed) or bool(self.unfinished and not self.unfinished & allowed)


@functools.lru_cache(maxsize=64)
def _lead_scripts(lead: int) -> frozenset[str]:
    """The scripts of the letters a two- or three-byte UTF-8 lead byte can begin (four-byte ones: not judged)."""
    if 0xC2 <= lead <= 0xDF:
        first, count = (lead & 0x1F) << 6, 64
    elif 0xE0 <= lead <= 0xEF:
        first, count = (lead & 0x0F) << 12, 4096
    else:
        return frozenset()
    return frozenset(scripts("".join(chr(c) for c in range(first, first + count) if not 0xD800 <= c <= 0xDFFF)))


def token_scripts(raw: bytes) -> TokenScripts:
    """The scripts of a token's bytes (:class:`TokenScripts`)."""
    whole = frozenset(scripts(raw.decode("utf-8", "ignore")))
    for back in range(1, min(3, len(raw)) + 1):
        byte = raw[-back]
        if byte >= 0xC0:
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return TokenScripts(whole, _lead_scripts(byte) if back < needed else frozenset())
        if byte < 0x80:
            break
    return TokenScripts(whole)


def stored_table(vocabulary: str) -> Path:
    """Where the cache keeps the token-scripts table of the vocabulary with digest ``vocabulary``."""
    return cache_dir() / "token-scripts" / f"{vocabulary}-v{TABLE_VERSION}.npz"


class ScriptMask:
    """Which tokens of a vocabulary hold letters outside a set of scripts; ``token_bytes`` gives every
    token's bytes, in id order, the first time a mask is asked for. With ``store`` (giving a ``.npz`` file,
    asked the first time too) the tokens' scripts are read from there when it exists, else worked out and
    written there for the next process (a 262k-token vocabulary takes seconds to read token by token)."""

    def __init__(self, token_bytes: Callable[[], Iterable[bytes]], store: Callable[[], Path] | None = None) -> None:
        self._token_bytes = token_bytes
        self._store = store
        self._kinds: list[TokenScripts] | None = None  # the distinct scripts of the vocabulary's tokens
        self._kind_of: np.ndarray | None = None  # each token's index into _kinds
        self._masks: dict[frozenset[str], np.ndarray] = {}

    def banned(self, allowed: frozenset[str], size: int) -> np.ndarray:
        """A boolean mask of ``size`` entries (a model's logits may outnumber its tokens): True for every
        token that holds or begins a letter of a script not in ``allowed``."""
        if self._kinds is None:
            store = self._store() if self._store is not None else None
            self._kinds, self._kind_of = _load(store) or self._work_out(store)
        if allowed not in self._masks:
            self._masks[allowed] = np.array([kind.outside(allowed) for kind in self._kinds], dtype=bool)[self._kind_of]
        mask = self._masks[allowed]
        return mask[:size] if len(mask) >= size else np.pad(mask, (0, size - len(mask)))

    def _work_out(self, store: Path | None) -> tuple[list[TokenScripts], np.ndarray]:
        index: dict[TokenScripts, int] = {}
        kind_of = np.array([index.setdefault(token_scripts(raw), len(index)) for raw in self._token_bytes()],
                           dtype=np.int32)
        kinds = list(index)
        if store is not None:
            _save(store, kinds, kind_of)
        return kinds, kind_of


def _load(store: Path | None) -> tuple[list[TokenScripts], np.ndarray] | None:
    """The table stored at ``store``, or None where there is none or it is damaged (it is worked out again)."""
    if store is None or not store.is_file():
        return None
    try:
        with np.load(store) as saved:
            table, kind_of = json.loads(str(saved["kinds"])), saved["kind_of"]
    except (OSError, ValueError, KeyError):
        return None
    return [TokenScripts(frozenset(whole), frozenset(unfinished)) for whole, unfinished in table], kind_of


def _save(store: Path, kinds: list[TokenScripts], kind_of: np.ndarray) -> None:
    """Write the table to ``store`` whole or not at all; an unwritable cache only costs the next process the
    same seconds."""
    table = json.dumps([[sorted(kind.whole), sorted(kind.unfinished)] for kind in kinds])
    saved = io.BytesIO()
    np.savez(saved, kind_of=kind_of, kinds=np.array(table))
    try:
        write_atomically(store, saved.getvalue())
    except OSError:
        pass
