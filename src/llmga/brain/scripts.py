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
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..retry import scripts


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


class ScriptMask:
    """Which tokens of a vocabulary hold letters outside a set of scripts; ``token_bytes`` gives every
    token's bytes, in id order, the first time a mask is asked for."""

    def __init__(self, token_bytes: Callable[[], Iterable[bytes]]) -> None:
        self._token_bytes = token_bytes
        self._tokens: list[TokenScripts] | None = None
        self._masks: dict[frozenset[str], np.ndarray] = {}

    def banned(self, allowed: frozenset[str], size: int) -> np.ndarray:
        """A boolean mask of ``size`` entries (a model's logits may outnumber its tokens): True for every
        token that holds or begins a letter of a script not in ``allowed``."""
        if self._tokens is None:
            self._tokens = [token_scripts(raw) for raw in self._token_bytes()]
        if allowed not in self._masks:
            self._masks[allowed] = np.array([token.outside(allowed) for token in self._tokens], dtype=bool)
        mask = self._masks[allowed]
        return mask[:size] if len(mask) >= size else np.pad(mask, (0, size - len(mask)))
