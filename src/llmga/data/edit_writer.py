"""Editing pairs written by an LLM: a caption in, (instruction, target caption) pairs out.

As in the paper, the LLM answers in a fixed format, one pair per line::

    Instruction: Replace the cat with a dog., Target caption: A dog is lying on the ground.

:func:`parse_pairs` reads that format; :func:`clean_pairs` drops malformed
pairs (no instruction or no target), unchanged ones (the target says what the
caption said) and repeats, and counts each.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass

from ..brain import Brain, BrainRequest, complete
from ..protocol import parse_reply
from ..settings import SamplingSettings
from .cache import AnswerCache, CachedBrain
from .templates import as_sentence

SYSTEM = (
    "You write data for teaching image editing. Given the caption of an image, invent {n} different, "
    "realistic edits of that image (replace, add or remove an object, change a colour, the weather, the "
    "season, the time of day or the style). For each edit write exactly one line in this format:\n"
    "Instruction: <the editing instruction>, Target caption: <the caption of the edited image>\n"
    "The target caption is the original caption changed only as the instruction says. Write nothing else."
)

EXAMPLE_CAPTION = "A cat is lying on the ground."
EXAMPLE_ANSWER = (
    "Instruction: Replace the cat with a dog., Target caption: A dog is lying on the ground.\n"
    "Instruction: Make the ground covered in snow., Target caption: A cat is lying on the snowy ground."
)

_INSTRUCTION = re.compile(r"instruction\s*:", re.IGNORECASE)
_TARGET = re.compile(r"[,;]?\s*target\s+caption\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class EditPair:
    """An editing instruction and the caption of the edited image, for a source caption."""

    source: str
    instruction: str
    target: str


def parse_pairs(answer: str, source: str) -> tuple[list[EditPair], int]:
    """The pairs in an LLM's answer, and how many attempted pairs were malformed.

    Each "Instruction:" starts a pair, which needs a non-empty instruction and a
    non-empty "Target caption:". An answer with no "Instruction:" at all counts
    as one malformed pair.
    """
    chunks = _INSTRUCTION.split(answer)[1:]
    if not chunks:
        return [], 1
    pairs, malformed = [], 0
    for chunk in chunks:
        parts = _TARGET.split(chunk, maxsplit=1)
        instruction = _tidy(parts[0])
        target = _tidy(parts[1]) if len(parts) == 2 else ""
        if instruction and target:
            pairs.append(EditPair(source, as_sentence(instruction), as_sentence(target)))
        else:
            malformed += 1
    return pairs, malformed


def clean_pairs(pairs: list[EditPair]) -> tuple[list[EditPair], Counter]:
    """Drop pairs whose target equals the source ("unchanged") and repeats ("duplicate"); count all."""
    counts: Counter = Counter()
    kept: list[EditPair] = []
    seen: set[tuple[str, str]] = set()
    for pair in pairs:
        key = (_normal(pair.instruction), _normal(pair.target))
        if _normal(pair.target) == _normal(pair.source):
            counts["unchanged"] += 1
        elif key in seen:
            counts["duplicate"] += 1
        else:
            seen.add(key)
            kept.append(pair)
    counts["kept"] += len(kept)
    return kept, counts


class EditPairWriter:
    """Asks an LLM (any :class:`~llmga.brain.Brain`, through an answer cache) for edit pairs of a caption."""

    def __init__(
        self,
        brain: Brain,
        cache: AnswerCache | None = None,
        pairs_per_caption: int = 2,
        settings: SamplingSettings = SamplingSettings(temperature=0.7, max_new_tokens=300),
        identity: str | None = None,
    ) -> None:
        self.brain = CachedBrain(brain, cache, identity)
        self.pairs_per_caption = pairs_per_caption
        self.settings = settings

    def messages(self, caption: str) -> list[dict]:
        """The few-shot chat that asks for the pairs of ``caption``."""
        return [
            {"role": "system", "content": SYSTEM.format(n=self.pairs_per_caption)},
            {"role": "user", "content": f"Caption: {EXAMPLE_CAPTION}"},
            {"role": "assistant", "content": EXAMPLE_ANSWER},
            {"role": "user", "content": f"Caption: {caption}"},
        ]

    def pairs(self, caption: str) -> tuple[list[EditPair], Counter]:
        """Clean pairs for ``caption`` and the counts: kept, malformed, unchanged, duplicate."""
        raw = complete(self.brain, BrainRequest(self.messages(caption), (), self.settings))
        parsed, malformed = parse_pairs(parse_reply(raw, self.brain.end_markers).text, caption)
        kept, counts = clean_pairs(parsed)
        counts["malformed"] += malformed
        return kept, counts


def _tidy(text: str) -> str:
    """One line of text without list markers, surrounding quotes or trailing separators."""
    text = re.sub(r"\n\s*(?:\d+[.)]|[-*•])\s*$", "", text)  # the next line's list marker
    return " ".join(text.split()).strip(" ,;\"'")


def _normal(text: str) -> str:
    """Lower case, no punctuation, single spaces: for comparing captions."""
    return " ".join(text.lower().translate(str.maketrans("", "", string.punctuation)).split())
