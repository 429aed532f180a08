"""What a world request says, apart from how it says it: the shared types of the world's two languages.

A request names some of a scene: :class:`Ask` holds :class:`Mention` s (an
object, or several alike: "two green circles"; placed absolutely, relative to
the mention before it, or not at all) and perhaps the time and the ground.
:mod:`llmga.data.world_english` and :mod:`llmga.data.world_chinese` put an
:class:`Ask`, an edit or a chat answer into words.

Every wording exists in two disjoint sets (:class:`Phrasings`): the ones
training data uses and the ones only the held-out measurement uses, so the
measurement asks in words the model was never taught.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from ..world.scene import Scene

TRAIN, HELD = "train", "held"
SPLITS = (TRAIN, HELD)
#: out-of-world things a user may ask for, by split and key: [English, Chinese, nearest world object or None]
OUTSIDE_THINGS: dict[str, dict[str, list]] = {
    split: things for split, things in json.loads(Path(__file__).with_name("world_outside.json").read_text()).items()
    if split in SPLITS}


def thing_names(column: int) -> dict[str, str]:
    """Every out-of-world thing's name in one language (0: English, 1: Chinese), by key."""
    return {key: entry[column] for things in OUTSIDE_THINGS.values() for key, entry in things.items()}


@dataclass(frozen=True)
class Phrasings:
    """Wordings of one thing: ``train`` for training data, ``held`` only for the held-out measurement."""

    train: tuple[str, ...]
    held: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if set(self.train) & set(self.held):
            raise ValueError(f"wordings both trained and held out: {sorted(set(self.train) & set(self.held))}")

    def pick(self, rng: random.Random, split: str, **fields: str) -> str:
        """A wording of ``split`` (a held-out request uses the trained ones where none is held out)."""
        options = self.held if split == HELD and self.held else self.train
        return rng.choice(options).format(**fields)

    def all(self) -> tuple[str, ...]:
        return self.train + self.held


def phrasings(train: str | tuple[str, ...], held: str | tuple[str, ...] = ()) -> Phrasings:
    """:class:`Phrasings` from "a|b|c" strings or tuples."""
    def split(value: str | tuple[str, ...]) -> tuple[str, ...]:
        return tuple(value.split("|")) if isinstance(value, str) and value else tuple(value)
    return Phrasings(split(train), split(held))


@dataclass(frozen=True)
class Mention:
    """One object phrase: a shape, and what else it names (None: not named).

    ``count`` objects alike ("two green circles"); ``position`` an absolute
    cell, or ``relation`` ("below") a cell next to the previous mention's.
    """

    shape: str
    colour: str | None = None
    size: str | None = None
    count: int = 1
    position: str | None = None
    relation: str | None = None


@dataclass(frozen=True)
class Ask:
    """What a drawing request names: its mentions, and the time and ground if named."""

    mentions: tuple[Mention, ...]
    time: str | None = None
    terrain: str | None = None


def whole_ask(scene: Scene) -> Ask:
    """Everything ``scene`` shows, as an :class:`Ask` naming it all (the words of an answer describing it)."""
    return Ask(tuple(Mention(o.shape, o.colour, o.size, position=o.position) for o in scene.objects),
               scene.background.time, scene.background.terrain)
