"""Regions of a scene's picture: masks over grid cells, boxes and borders, and what a mask touches.

Masks follow :mod:`llmga.masks`: mode ``"L"``, 255 where the painter
repaints. A *cell* mask covers one grid cell, which holds its object whole.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .. import masks
from .render import cell_box, shape_alpha
from .scene import POSITIONS, SHAPES, Scene, WorldError, as_rng

MASK_KINDS = ("cell", "box", "outpaint")


@dataclass(frozen=True)
class SceneMask:
    """A mask for a scene's picture and how it was made.

    ``kind`` is "cell" (``position`` names the cell), "box", or "outpaint"
    (``sides`` maps each side to its border fraction, ``width`` is "narrow" or "wide").
    """

    kind: str
    image: Image.Image
    position: str | None = None
    sides: dict[str, float] = field(default_factory=dict)
    width: str | None = None

    @property
    def task(self) -> str:
        """ "outpaint" for border masks, else "inpaint"."""
        return "outpaint" if self.kind == "outpaint" else "inpaint"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (without the pixels): kind, task, box and how it was made."""
        out: dict[str, Any] = {"kind": self.kind, "task": self.task, "box": list(self.image.getbbox() or ())}
        if self.position:
            out["position"] = self.position
        if self.sides:
            out["sides"] = dict(self.sides)
            out["width"] = self.width
        return out


def cell_pixels(position: str, size: int) -> tuple[int, int, int, int]:
    """The pixels whose centres lie in a cell: (left, top, right, bottom), right/bottom exclusive.

    The nine cells' pixels tile the picture with no overlap, and each holds
    its object whole (objects keep half a pixel clear of the cell's edge).
    """
    return tuple(round(v) for v in cell_box(position, size))  # type: ignore[return-value]


def cell_mask(position: str, size: int = 32) -> SceneMask:
    """A mask over one grid cell (its object, if any, lies wholly inside)."""
    if position not in POSITIONS:
        raise WorldError(f"unknown position {position!r}; the world knows {', '.join(POSITIONS)}")
    image = Image.new("L", (size, size), 0)
    left, top, right, bottom = cell_pixels(position, size)
    ImageDraw.Draw(image).rectangle((left, top, right - 1, bottom - 1), fill=255)
    return SceneMask("cell", image, position=position)


def box_mask(rng: random.Random | int | None, size: int = 32) -> SceneMask:
    """One random rectangle, 15-50% of the picture's width and height."""
    return SceneMask("box", masks.box_mask((size, size), as_rng(rng), boxes=(1, 1)))


def outpaint_mask(
    size: int = 32,
    sides: dict[str, float] | None = None,
    *,
    width: str | None = None,
    rng: random.Random | int | None = None,
) -> SceneMask:
    """Borders to paint: ``sides`` (side -> fraction), or random sides of a ``width`` ("narrow"/"wide")."""
    if sides is None:
        width = width or "narrow"
        sides = masks.random_outpaint_sides(as_rng(rng), width)
    return SceneMask(
        "outpaint", masks.outpaint_mask((size, size), sides), sides=dict(sides), width=width
    )


def random_mask(
    scene: Scene, rng: random.Random | int | None, size: int = 32, kinds: tuple[str, ...] = MASK_KINDS
) -> SceneMask:
    """A mask of a kind from ``kinds``: an object's cell (any cell if there is none), a box, or borders."""
    rng = as_rng(rng)
    if not kinds or set(kinds) - set(MASK_KINDS):
        raise WorldError(f"mask kinds must be a non-empty choice of {MASK_KINDS}, got {kinds}")
    kind = rng.choice(kinds)
    if kind == "cell":
        cells = [o.position for o in scene.objects] or list(POSITIONS)
        return cell_mask(rng.choice(cells), size)
    if kind == "box":
        return box_mask(rng, size)
    return outpaint_mask(size, width=rng.choice(tuple(masks.BORDER_WIDTHS)), rng=rng)


def scene_masks(scene: Scene, rng: random.Random | int | None, size: int = 32) -> list[SceneMask]:
    """A standard set: each object's cell, one random box, one narrow and one wide outpainting border."""
    rng = as_rng(rng)
    cells = [cell_mask(o.position, size) for o in scene.objects]
    return cells + [
        box_mask(rng, size),
        outpaint_mask(size, width="narrow", rng=rng),
        outpaint_mask(size, width="wide", rng=rng),
    ]


def footprint(position: str, size: int) -> np.ndarray:
    """Where an object at ``position`` may have pixels: a boolean ``(size, size)`` array."""
    return np.logical_or.reduce([shape_alpha(shape, "large", position, size) > 0 for shape in SHAPES])


def touched_positions(mask: Image.Image) -> tuple[str, ...]:
    """The cells whose object a repaint under ``mask`` may change (the mask meets the object's footprint)."""
    size = mask.size[0]
    if mask.size != (size, size):
        raise WorldError(f"world masks are square, got {mask.size}")
    hidden = np.asarray(mask.convert("L")) >= 128
    return tuple(p for p in POSITIONS if (hidden & footprint(p, size)).any())


