"""Masks for inpainting and outpainting: reading them, blending painted pixels back, and drawing random ones.

A mask is a mode ``"L"`` image the size of the picture: 255 where the painter
repaints (the hidden region), 0 where the picture is kept, as diffusers'
inpainting pipelines expect. Conventions, shared by every masked painter:

- White means repaint, black means keep. A mask of any mode is read as
  grey levels; where it has transparency (RGBA, LA, a palette with a
  transparent colour) each pixel counts as ``brightness x opacity``, so a
  transparent pixel is "keep". Grey levels are binarized at 128.
- A mask whose size differs from the image's is refused
  (:class:`~llmga.errors.InvalidInputError` naming both sizes) rather than
  resized: a mask of another size was most likely drawn on another image, and
  a silent resize would repaint the wrong pixels.
- An empty (all black) mask is refused: there is nothing to repaint. A full
  (all white) mask is allowed and repaints the whole image.
- The blend band: the painted result is composited onto the original through
  :func:`blend_mask`, which is 1 on the mask, ramps down to 0 within ``band``
  pixels (Chebyshev distance) of it and is exactly 0 beyond, so every pixel
  farther than ``band`` from the mask stays identical to the input.

Random masks for training data and benchmarks (:func:`random_mask`): brush
strokes, boxes and outpainting borders. Borders are given per side as a
fraction of the picture's width (left, right) or height (top, bottom);
"narrow" and "wide" borders draw the fraction from :data:`NARROW` or :data:`WIDE`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, UnidentifiedImageError

from .errors import InvalidInputError
from .images import FORMATS, check_shape

#: grey level from which a mask pixel means "repaint"
THRESHOLD = 128

MaskLike = Image.Image | np.ndarray | str | Path

def load_mask(mask: MaskLike, size: tuple[int, int] | None = None, allow_empty: bool = False) -> Image.Image:
    """Read ``mask`` (PIL image, bool/uint8 array or file path) as a binary ``L`` image (0 keep, 255 repaint).

    ``size`` (width, height) is the image's size: a mask of another size is refused.
    An empty mask is refused unless ``allow_empty``.
    """
    grey = _grey(_open_mask(mask))
    if size is not None and grey.size != tuple(size):
        raise InvalidInputError(
            f"the mask is {grey.width}x{grey.height} but the image is {size[0]}x{size[1]}; "
            "draw the mask on this image, or resize it to the image's size"
        )
    binary = grey.point(lambda v: 255 if v >= THRESHOLD else 0)
    if not allow_empty and binary.getbbox() is None:
        raise InvalidInputError(
            "the mask is empty (all black): nothing to repaint; paint white where the image should change"
        )
    return binary


def dilate(mask: Image.Image, radius: int) -> Image.Image:
    """Grow a binary mask by ``radius`` pixels (a square neighbourhood)."""
    if radius <= 0:
        return mask.copy()
    on = (np.asarray(mask) > 0).astype(np.int32)
    return Image.fromarray(np.where(_box_sum(on, radius) > 0, 255, 0).astype(np.uint8))


def blend_mask(mask: Image.Image, band: int) -> Image.Image:
    """The compositing alpha for ``mask``: 255 on it, a ramp across ``band`` pixels, 0 beyond.

    Made by dilating by half the band and box-blurring by the other half, so
    the ramp never reaches past ``band`` pixels and never eats into the mask.
    """
    grow, blur = (band + 1) // 2, band // 2
    grown = dilate(mask, grow)
    if blur == 0:
        return grown
    window = (2 * blur + 1) ** 2
    sums = _box_sum((np.asarray(grown) > 0).astype(np.int32), blur)
    if window * 255 >= 2**31:  # only for bands of hundreds of pixels: int32 suffices (and halves the memory)
        sums = sums.astype(np.int64)
    sums *= 255
    sums += window // 2
    sums //= window
    return Image.fromarray(sums.astype(np.uint8))


def composite(painted: Image.Image, original: Image.Image, alpha: Image.Image) -> Image.Image:
    """``painted`` where ``alpha`` is 255, ``original`` where it is 0, a mix between."""
    return Image.composite(painted.convert("RGB"), original.convert("RGB"), alpha)


def _open_mask(mask: MaskLike) -> Image.Image:
    if isinstance(mask, Image.Image):
        return mask
    if isinstance(mask, np.ndarray):
        if mask.ndim != 2 or mask.dtype not in (np.bool_, np.uint8):
            raise InvalidInputError(f"a mask array must be 2-D bool or uint8, got {mask.ndim}-D {mask.dtype}")
        return Image.fromarray(mask.astype(np.uint8) * 255 if mask.dtype == np.bool_ else mask)
    if isinstance(mask, (str, Path)):
        path = Path(mask).expanduser()
        try:
            with Image.open(path, formats=list(FORMATS)) as opened:
                check_shape(opened.size, f"mask {path}")
                opened.load()
                return opened.copy()
        except (FileNotFoundError, UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise InvalidInputError(f"cannot read mask {path}: {exc}") from exc
    raise InvalidInputError(f"expected a mask image, array or file path, got {type(mask).__name__}")


def _grey(mask: Image.Image) -> Image.Image:
    """Grey levels of any mode; transparent pixels count as black."""
    if mask.mode in ("RGBA", "LA", "PA") or "transparency" in mask.info:
        rgba = mask.convert("RGBA")
        return ImageChops.multiply(rgba.convert("L"), rgba.getchannel("A"))
    return mask.convert("L")


def _box_sum(values: np.ndarray, radius: int) -> np.ndarray:
    """Sum over the (2r+1)x(2r+1) square around each pixel, edges replicated."""
    return _run_sum(_run_sum(values, radius).T, radius).T


def _run_sum(values: np.ndarray, radius: int) -> np.ndarray:
    """Sum over 2r+1 neighbours along each row, edges replicated (prefix sums, O(pixels))."""
    padded = np.pad(values, ((0, 0), (radius + 1, radius)), mode="edge")
    sums = np.cumsum(padded, axis=1, dtype=np.int32)
    width = values.shape[1]
    return sums[:, 2 * radius + 1 :] - sums[:, :width]


# -- random masks ----------------------------------------------------------------

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
