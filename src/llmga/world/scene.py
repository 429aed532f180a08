"""Scenes of the miniature world: what a picture shows, and a seeded generator of them.

A scene is a background (time of day and terrain) and up to nine objects,
each in its own cell of a 3x3 grid and described by shape, colour and size.
Every attribute vocabulary of the world lives here; how each value looks is
:mod:`llmga.world.render`'s business.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import InvalidInputError

SHAPES = ("circle", "square", "triangle", "star", "diamond", "cross")
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink")
SIZES = ("small", "large")
#: The 3x3 grid, row by row: ``POSITIONS[row * GRID + col]``.
GRID = 3
POSITIONS = (
    "top left",
    "top middle",
    "top right",
    "middle left",
    "center",
    "middle right",
    "bottom left",
    "bottom middle",
    "bottom right",
)
TIMES = ("day", "sunset", "night")
TERRAINS = ("grass", "sand", "snow", "water")

#: Every vocabulary by attribute name (what the judge predicts, what an edit changes).
VOCAB: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": COLOURS,
    "size": SIZES,
    "position": POSITIONS,
    "time": TIMES,
    "terrain": TERRAINS,
}


class WorldError(InvalidInputError):
    """A scene, caption or world setting is not valid in the miniature world."""


def _check(attribute: str, value: str) -> None:
    if value not in VOCAB[attribute]:
        raise WorldError(f"unknown {attribute} {value!r}; the world knows {', '.join(VOCAB[attribute])}")


@dataclass(frozen=True)
class Obj:
    """One object: its shape, colour, size and grid position (a name from :data:`POSITIONS`)."""

    shape: str
    colour: str
    size: str
    position: str

    def __post_init__(self) -> None:
        for attribute in ("shape", "colour", "size", "position"):
            _check(attribute, getattr(self, attribute))

    @property
    def cell(self) -> int:
        """Index of the grid cell, row by row (0 = top left, 8 = bottom right)."""
        return POSITIONS.index(self.position)

    @property
    def row_col(self) -> tuple[int, int]:
        """(row, column) of the grid cell."""
        return divmod(self.cell, GRID)

    def to_dict(self) -> dict[str, str]:
        return {"shape": self.shape, "colour": self.colour, "size": self.size, "position": self.position}


@dataclass(frozen=True)
class Background:
    """The sky's time of day and the ground's terrain."""

    time: str = "day"
    terrain: str = "grass"

    def __post_init__(self) -> None:
        _check("time", self.time)
        _check("terrain", self.terrain)

    def to_dict(self) -> dict[str, str]:
        return {"time": self.time, "terrain": self.terrain}


@dataclass(frozen=True)
class Scene:
    """A background and objects in distinct cells, kept in reading order (by cell).

    Two scenes that show the same picture compare equal, whatever order their
    objects were given in.
    """

    objects: tuple[Obj, ...] = ()
    background: Background = field(default_factory=Background)

    def __post_init__(self) -> None:
        objects = tuple(sorted(self.objects, key=lambda o: o.cell))
        cells = [o.cell for o in objects]
        if len(set(cells)) != len(cells):
            taken = sorted({POSITIONS[c] for c in cells if cells.count(c) > 1})
            raise WorldError(
                f"two objects at the {' and the '.join(taken)}: each cell holds at most one object"
            )
        object.__setattr__(self, "objects", objects)

    def object_at(self, position: str) -> Obj | None:
        """The object at ``position``, or None for an empty cell."""
        return next((o for o in self.objects if o.position == position), None)

    @property
    def free_positions(self) -> tuple[str, ...]:
        """Positions with no object, in reading order."""
        taken = {o.position for o in self.objects}
        return tuple(p for p in POSITIONS if p not in taken)

    def with_objects(self, objects: Iterable[Obj]) -> Scene:
        """The same background with other objects."""
        return Scene(tuple(objects), self.background)

    def with_background(self, **changes: str) -> Scene:
        """The same objects with ``time`` and/or ``terrain`` changed."""
        return Scene(self.objects, replace(self.background, **changes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (see :meth:`from_dict`)."""
        return {"objects": [o.to_dict() for o in self.objects], "background": self.background.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        """The scene from :meth:`to_dict`'s form."""
        try:
            objects = tuple(Obj(**o) for o in data.get("objects", ()))
            return cls(objects, Background(**data.get("background", {})))
        except TypeError as exc:
            raise WorldError(f"not a scene dictionary: {exc}") from None


def as_rng(rng: random.Random | int | None) -> random.Random:
    """A ``random.Random`` from a generator, a seed, or None (seed 0)."""
    return rng if isinstance(rng, random.Random) else random.Random(0 if rng is None else rng)


def sample_object(
    rng: random.Random,
    position: str,
    *,
    colours: tuple[str, ...] = COLOURS,
    shapes: tuple[str, ...] = SHAPES,
    sizes: tuple[str, ...] = SIZES,
) -> Obj:
    """A random object at ``position``."""
    return Obj(rng.choice(shapes), rng.choice(colours), rng.choice(sizes), position)


def sample_scene(
    rng: random.Random | int | None = None,
    max_objects: int = 1,
    *,
    min_objects: int = 1,
    colours: tuple[str, ...] = COLOURS,
    shapes: tuple[str, ...] = SHAPES,
    sizes: tuple[str, ...] = SIZES,
    positions: tuple[str, ...] = POSITIONS,
    times: tuple[str, ...] = TIMES,
    terrains: tuple[str, ...] = TERRAINS,
) -> Scene:
    """A random scene with ``min_objects``..``max_objects`` objects in distinct cells.

    ``rng`` is a ``random.Random`` or a seed; the same seed gives the same
    scene. The tuples restrict each attribute to a part of its vocabulary
    (e.g. ``positions=("center",)`` for a world without position).
    """
    rng = as_rng(rng)
    for attribute, chosen in (
        ("colour", colours),
        ("shape", shapes),
        ("size", sizes),
        ("position", positions),
        ("time", times),
        ("terrain", terrains),
    ):
        if not chosen:
            raise WorldError(f"no {attribute} to choose from")
        for value in chosen:
            _check(attribute, value)
    if not 0 <= min_objects <= max_objects <= len(positions):
        raise WorldError(
            f"need 0 <= min_objects <= max_objects <= {len(positions)} (the cells to choose from), "
            f"got {min_objects}..{max_objects}"
        )
    count = rng.randint(min_objects, max_objects)
    cells = rng.sample(positions, count)
    objects = tuple(sample_object(rng, p, colours=colours, shapes=shapes, sizes=sizes) for p in cells)
    return Scene(objects, Background(rng.choice(times), rng.choice(terrains)))


#: :func:`sample_scene`'s keyword for each attribute's choices
CHOICE_KEYWORDS = {"shape": "shapes", "colour": "colours", "size": "sizes", "position": "positions",
                   "time": "times", "terrain": "terrains"}


def sub_world(only: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """:func:`sample_scene` keywords for a part of the world: ``{"shape": ("circle",)}`` -> ``{"shapes": ...}``."""
    unknown = sorted(set(only) - set(CHOICE_KEYWORDS))
    if unknown:
        raise WorldError(f"unknown attribute {', '.join(unknown)}; the world has {', '.join(CHOICE_KEYWORDS)}")
    for attribute, values in only.items():
        for value in values:
            _check(attribute, value)
    return {CHOICE_KEYWORDS[attribute]: tuple(values) for attribute, values in only.items()}


def sample_scenes(rng: random.Random, n: int, max_objects: int, min_objects: int = 0) -> list[Scene]:
    """``n`` random scenes with ``min_objects``..``max_objects`` objects."""
    return [sample_scene(rng, max_objects, min_objects=min_objects) for _ in range(n)]
