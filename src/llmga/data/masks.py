"""Masks for the inpainting and outpainting data: brush strokes, boxes, outpaint borders.

A mask is a mode ``"L"`` image the size of the picture: 255 where the painter
must paint (the hidden region), 0 where the picture is kept, as diffusers'
inpainting pipelines expect. Outpaint borders are given per side as a fraction
of the picture's width (left, right) or height (top, bottom); "narrow" and
"wide" borders draw the fraction from :data:`NARROW` or :data:`WIDE`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from ..errors import InvalidInputError

SIDES = ("left", "right", "top", "bottom")
MASK_KINDS = ("brush", "box", "outpaint")
#: border fractions of narrow and wide outpainting masks (two opposite wide borders leave 20%)
NARROW = (0.1, 0.25)
WIDE = (0.25, 0.4)
BORDER_WIDTHS = {"narrow": NARROW, "wide": WIDE}


@dataclass(frozen=True)
class Mask:
    """A mask and how it was made: ``kind`` is "brush", "box" or "outpaint"; ``sides`` maps
    each outpainted side to its border fraction."""

    kind: str
    image: Image.Image
    sides: dict[str, float] = field(default_factory=dict)
    width: str | None = None

    @property
    def task(self) -> str:
        """ "outpaint" for border masks, else "inpaint"."""
        return "outpaint" if self.kind == "outpaint" else "inpaint"


def outpaint_mask(size: tuple[int, int], sides: dict[str, float]) -> Image.Image:
    """A mask hiding a border on each of ``sides`` (fraction of the width or height)."""
    width, height = size
    for side, fraction in sides.items():
        if side not in SIDES:
            raise InvalidInputError(f"unknown side {side!r}; choose from {SIDES}")
        if not 0 < fraction < 1:
            raise InvalidInputError(f"border fraction for {side} must be in (0, 1), got {fraction}")
    for a, b in (("left", "right"), ("top", "bottom")):
        if sides.get(a, 0) + sides.get(b, 0) >= 1:
            raise InvalidInputError(f"{a} and {b} borders together must leave part of the image visible")
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    left, right = round(sides.get("left", 0) * width), round(sides.get("right", 0) * width)
    top, bottom = round(sides.get("top", 0) * height), round(sides.get("bottom", 0) * height)
    for box, extent in (
        ((0, 0, left, height), left),
        ((width - right, 0, width, height), right),
        ((0, 0, width, top), top),
        ((0, height - bottom, width, height), bottom),
    ):
        if extent > 0:
            draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=255)
    return mask


def random_outpaint_sides(rng: random.Random, width: str = "narrow") -> dict[str, float]:
    """One to four sides, each with a border fraction drawn from the ``width`` range."""
    if width not in BORDER_WIDTHS:
        raise InvalidInputError(f"border width must be one of {tuple(BORDER_WIDTHS)}, got {width!r}")
    low, high = BORDER_WIDTHS[width]
    chosen = rng.sample(SIDES, rng.choice((1, 1, 2, 2, 3, 4)))
    return {side: round(rng.uniform(low, high), 3) for side in SIDES if side in chosen}


def brush_mask(size: tuple[int, int], rng: random.Random, strokes: tuple[int, int] = (1, 4)) -> Image.Image:
    """Irregular free-form brush strokes: thick poly-lines with rounded joints."""
    width, height = size
    short = min(size)
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(rng.randint(*strokes)):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        brush = max(2, round(short * rng.uniform(0.05, 0.15)))
        angle = rng.uniform(0, 2 * math.pi)
        points = [(x, y)]
        for _ in range(rng.randint(3, 8)):
            angle += rng.uniform(-math.pi / 2, math.pi / 2)
            length = short * rng.uniform(0.1, 0.3)
            x = min(max(x + length * math.cos(angle), 0), width - 1)
            y = min(max(y + length * math.sin(angle), 0), height - 1)
            points.append((x, y))
        draw.line(points, fill=255, width=brush, joint="curve")
        for px, py in points:
            r = brush / 2
            draw.ellipse((px - r, py - r, px + r, py + r), fill=255)
    return mask


def box_mask(size: tuple[int, int], rng: random.Random, boxes: tuple[int, int] = (1, 3)) -> Image.Image:
    """One or more rectangles, each 15-50% of the picture's width and height."""
    width, height = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(rng.randint(*boxes)):
        w, h = round(width * rng.uniform(0.15, 0.5)), round(height * rng.uniform(0.15, 0.5))
        x, y = rng.randint(0, max(0, width - w)), rng.randint(0, max(0, height - h))
        draw.rectangle((x, y, x + max(w, 1) - 1, y + max(h, 1) - 1), fill=255)
    return mask


def random_mask(
    size: tuple[int, int],
    rng: random.Random,
    kinds: tuple[str, ...] = MASK_KINDS,
    widths: tuple[str, ...] = tuple(BORDER_WIDTHS),
) -> Mask:
    """A mask of a kind drawn from ``kinds`` (outpaint borders of a width drawn from ``widths``)."""
    unknown = set(kinds) - set(MASK_KINDS)
    if not kinds or unknown:
        raise InvalidInputError(f"mask kinds must be a non-empty choice of {MASK_KINDS}, got {kinds}")
    kind = rng.choice(kinds)
    if kind == "brush":
        return Mask(kind, brush_mask(size, rng))
    if kind == "box":
        return Mask(kind, box_mask(size, rng))
    width = rng.choice(widths)
    sides = random_outpaint_sides(rng, width)
    return Mask(kind, outpaint_mask(size, sides), sides, width)


def apply_mask(image: Image.Image, mask: Image.Image, fill: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """``image`` with the masked region painted over in ``fill``."""
    return Image.composite(Image.new("RGB", image.size, fill), image.convert("RGB"), mask)
