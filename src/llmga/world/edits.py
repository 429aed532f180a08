"""Instruction edits of a scene: an instruction ("make the star blue") with the scene before and after it.

Each edit changes exactly one thing: one object's colour, shape, size or cell,
one object more or less, the time of day or the terrain. Objects are named by the
shortest unambiguous phrase: "the star", else "the red star", else "the star
at the top left".
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .captions import detailed_caption, short_caption
from .scene import (
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    TERRAINS,
    TIMES,
    Obj,
    Scene,
    WorldError,
    as_rng,
    sample_object,
)

EDIT_KINDS = ("recolour", "replace", "add", "remove", "time", "terrain", "resize", "move")
#: the edits that change one of the scene's objects
OBJECT_KINDS = ("recolour", "replace", "remove", "resize", "move")


@dataclass(frozen=True)
class EditPair:
    """An instruction and the scenes before (``source``) and after (``target``) it."""

    kind: str
    instruction: str
    source: Scene
    target: Scene

    @property
    def source_caption(self) -> str:
        return detailed_caption(self.source)

    @property
    def target_caption(self) -> str:
        return detailed_caption(self.target)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: kind, instruction, both detailed captions, both scenes."""
        return {
            "kind": self.kind,
            "instruction": self.instruction,
            "source_caption": self.source_caption,
            "target_caption": self.target_caption,
            "source_short": short_caption(self.source),
            "target_short": short_caption(self.target),
            "source": self.source.to_dict(),
            "target": self.target.to_dict(),
        }


def refer(scene: Scene, obj: Obj) -> str:
    """The shortest phrase that singles ``obj`` out: "the star", "the red star", "the star at the center"."""
    others = [o for o in scene.objects if o != obj]
    if all(o.shape != obj.shape for o in others):
        return f"the {obj.shape}"
    if all((o.colour, o.shape) != (obj.colour, obj.shape) for o in others):
        return f"the {obj.colour} {obj.shape}"
    return f"the {obj.shape} at the {obj.position}"


def _other(rng: random.Random, vocab: tuple[str, ...], current: str) -> str:
    return rng.choice([v for v in vocab if v != current])


def _pick(scene: Scene, rng: random.Random) -> Obj:
    if not scene.objects:
        raise WorldError("this edit needs an object, and the scene has none")
    return rng.choice(scene.objects)


def _swap(scene: Scene, old: Obj, new: Obj) -> Scene:
    return scene.with_objects(new if o == old else o for o in scene.objects)


def recolour(scene: Scene, rng: random.Random | int | None = None, colour: str | None = None) -> EditPair:
    """Paint one object another colour: "make the star blue"."""
    rng = as_rng(rng)
    obj = _pick(scene, rng)
    colour = colour or _other(rng, COLOURS, obj.colour)
    target = _swap(scene, obj, replace(obj, colour=colour))
    return EditPair("recolour", f"make {refer(scene, obj)} {colour}", scene, target)


def replace_shape(scene: Scene, rng: random.Random | int | None = None, shape: str | None = None) -> EditPair:
    """Swap one object for another shape of the same colour and size: "replace the circle with a square"."""
    rng = as_rng(rng)
    obj = _pick(scene, rng)
    shape = shape or _other(rng, SHAPES, obj.shape)
    target = _swap(scene, obj, replace(obj, shape=shape))
    return EditPair("replace", f"replace {refer(scene, obj)} with a {shape}", scene, target)


def resize(scene: Scene, rng: random.Random | int | None = None) -> EditPair:
    """Make one object the other size: "make the star large"."""
    rng = as_rng(rng)
    obj = _pick(scene, rng)
    size = _other(rng, SIZES, obj.size)
    target = _swap(scene, obj, replace(obj, size=size))
    return EditPair("resize", f"make {refer(scene, obj)} {size}", scene, target)


def move(scene: Scene, rng: random.Random | int | None = None, position: str | None = None) -> EditPair:
    """Move one object to a free cell: "move the star to the top left"."""
    rng = as_rng(rng)
    obj = _pick(scene, rng)
    if position is None:
        if not scene.free_positions:
            raise WorldError("cannot move an object: every cell is taken")
        position = rng.choice(scene.free_positions)
    elif position not in scene.free_positions:
        raise WorldError(f"cannot move {refer(scene, obj)} to the {position}: that cell is not free")
    target = _swap(scene, obj, replace(obj, position=position))
    return EditPair("move", f"move {refer(scene, obj)} to the {position}", scene, target)


def add_object(scene: Scene, rng: random.Random | int | None = None, max_objects: int = 3) -> EditPair:
    """Put a new object in a free cell: "add a small green triangle at the top right"."""
    rng = as_rng(rng)
    if len(scene.objects) >= max_objects or not scene.free_positions:
        raise WorldError(
            f"cannot add an object: the scene already has {len(scene.objects)} (most {max_objects})"
        )
    obj = sample_object(rng, rng.choice(scene.free_positions))
    target = scene.with_objects(scene.objects + (obj,))
    return EditPair("add", f"add a {obj.size} {obj.colour} {obj.shape} at the {obj.position}", scene, target)


def remove_object(scene: Scene, rng: random.Random | int | None = None) -> EditPair:
    """Take one object away: "remove the star"."""
    rng = as_rng(rng)
    obj = _pick(scene, rng)
    target = scene.with_objects(o for o in scene.objects if o != obj)
    return EditPair("remove", f"remove {refer(scene, obj)}", scene, target)


def change_time(scene: Scene, rng: random.Random | int | None = None, time: str | None = None) -> EditPair:
    """Another time of day: "make it night"."""
    time = time or _other(as_rng(rng), TIMES, scene.background.time)
    return EditPair("time", f"make it {time}", scene, scene.with_background(time=time))


def change_terrain(
    scene: Scene, rng: random.Random | int | None = None, terrain: str | None = None
) -> EditPair:
    """Another terrain: "turn the grass into snow"."""
    old = scene.background.terrain
    terrain = terrain or _other(as_rng(rng), TERRAINS, old)
    return EditPair(
        "terrain", f"turn the {old} into {terrain}", scene, scene.with_background(terrain=terrain)
    )


EDITS: dict[str, Callable[..., EditPair]] = {
    "recolour": recolour,
    "replace": replace_shape,
    "add": add_object,
    "remove": remove_object,
    "time": change_time,
    "terrain": change_terrain,
    "resize": resize,
    "move": move,
}


def possible_edits(scene: Scene, max_objects: int = 3, kinds: tuple[str, ...] = EDIT_KINDS) -> list[str]:
    """The edit kinds (of ``kinds``) that apply to ``scene``."""
    unknown = set(kinds) - set(EDIT_KINDS)
    if unknown:
        raise WorldError(f"unknown edit kinds {sorted(unknown)}; choose from {EDIT_KINDS}")
    return [
        k
        for k in kinds
        if not (k in OBJECT_KINDS and not scene.objects)
        and not (k == "add" and len(scene.objects) >= min(max_objects, len(POSITIONS)))
        and not (k == "move" and not scene.free_positions)
    ]


def sample_edit(
    scene: Scene,
    rng: random.Random | int | None = None,
    kinds: tuple[str, ...] = EDIT_KINDS,
    max_objects: int = 3,
) -> EditPair:
    """A random edit of a kind from ``kinds`` that applies to ``scene`` (at most ``max_objects`` after it)."""
    rng = as_rng(rng)
    usable = possible_edits(scene, max_objects, kinds)
    if not usable:
        raise WorldError(f"none of the edits {kinds} applies to {detailed_caption(scene)!r}")
    kind = rng.choice(usable)
    return add_object(scene, rng, max_objects) if kind == "add" else EDITS[kind](scene, rng)


def sample_edit_chain(
    scene: Scene,
    rng: random.Random | int | None,
    turns: int,
    kinds: tuple[str, ...] = EDIT_KINDS,
    max_objects: int = 3,
) -> list[EditPair]:
    """``turns`` successive edits, each starting from the last one's target (follow-up turns)."""
    rng = as_rng(rng)
    chain: list[EditPair] = []
    for _ in range(turns):
        chain.append(sample_edit(chain[-1].target if chain else scene, rng, kinds, max_objects))
    return chain
