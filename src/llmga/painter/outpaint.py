"""Outpainting: extend an image beyond its borders.

:func:`outpaint_canvas` (margins in pixels) and :func:`outpaint_to_aspect`
(a target aspect ratio) build a :class:`Canvas`: the larger image with the
original pasted in, the new area pre-filled by :func:`fill_masked` (a smooth
extension of the border colours plus a little noise, a better start than grey
for models that look at the masked pixels), and the mask of the new area.
:func:`outpaint` then paints the new area with an
:class:`~llmga.painter.inpaint.InpaintPainter`; the original's pixels stay
identical except within the blend band along the seam.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import NamedTuple

import numpy as np
from PIL import Image

from ..errors import InvalidInputError
from ..images import ImageLike, as_rgb
from ..masks import THRESHOLD
from ..settings import PaintSettings
from .inpaint import InpaintPainter, MaskedPainting
from .text_to_image import ProgressCallback

#: no canvas side may exceed this many pixels
MAX_CANVAS_SIDE = 16384

Box = tuple[int, int, int, int]


class Canvas(NamedTuple):
    """A canvas to outpaint: ``image`` (original at ``box``, new area pre-filled), ``mask`` (white: new)."""

    image: Image.Image
    mask: Image.Image
    box: Box  # (left, top, right, bottom) of the original inside the canvas


def outpaint_canvas(
    image: ImageLike, left: int = 0, right: int = 0, top: int = 0, bottom: int = 0, seed: int = 0
) -> Canvas:
    """Extend ``image`` by the given margins (pixels); ``seed`` drives the fill's noise."""
    margins = {"left": left, "right": right, "top": top, "bottom": bottom}
    if any(m < 0 for m in margins.values()):
        raise InvalidInputError(f"outpainting margins must be >= 0, got {margins}")
    if not any(margins.values()):
        raise InvalidInputError("all outpainting margins are 0: nothing to extend")
    original = as_rgb(image)
    size = (original.width + left + right, original.height + top + bottom)
    check_canvas_size(size)
    box = (left, top, left + original.width, top + original.height)
    canvas = Image.new("RGB", size)
    canvas.paste(original, box[:2])
    mask = Image.new("L", size, 255)
    mask.paste(0, box)
    return Canvas(fill_masked(canvas, mask, seed=seed), mask, box)


def outpaint_to_aspect(
    image: ImageLike, aspect: float | str | tuple[int, int], direction: str = "both", seed: int = 0
) -> Canvas:
    """Extend ``image`` (never crop it) to ``aspect`` (width/height: 1.777, "16:9", "16/9", (16, 9)).

    ``direction``: "both" (symmetric; an odd extra pixel goes right or down), or
    "left", "right", "top", "bottom"; it must lie on the axis that grows.
    """
    original = as_rgb(image)
    target = parse_aspect(aspect)
    w, h = original.size
    if w / h < target:
        extra, axis = round(h * target) - w, ("left", "right")
    else:
        extra, axis = round(w / target) - h, ("top", "bottom")
    if extra <= 0:
        raise InvalidInputError(f"the image ({w}x{h}) already has aspect {target:.4g}: nothing to extend")
    if direction not in ("both", *axis):
        raise InvalidInputError(
            f"to reach aspect {target:.4g} the {w}x{h} image grows {' or '.join(axis)} (or 'both'), "
            f"not {direction!r}"
        )
    first = extra // 2 if direction == "both" else extra * (direction == axis[0])
    return outpaint_canvas(original, **{axis[0]: first, axis[1]: extra - first}, seed=seed)


def parse_aspect(aspect: float | str | tuple[int, int]) -> float:
    """Width/height as a float from 1.777, "1.777", "16:9", "16/9" or (16, 9)."""
    value: float | None = None
    if isinstance(aspect, tuple) and len(aspect) == 2 and all(isinstance(a, (int, float)) for a in aspect):
        value = aspect[0] / aspect[1] if aspect[1] else None
    elif isinstance(aspect, (int, float)) and not isinstance(aspect, bool):
        value = float(aspect)
    elif isinstance(aspect, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:[:/]\s*(\d+(?:\.\d+)?))?\s*", aspect)
        if match and float(match.group(2) or 1):
            value = float(match.group(1)) / float(match.group(2) or 1)
    if value is None or not value > 0:
        raise InvalidInputError(f"cannot read aspect ratio {aspect!r}; use e.g. 1.777, '16:9' or '16/9'")
    return value


def check_canvas_size(size: tuple[int, int]) -> None:
    """Refuse canvases with a side over :data:`MAX_CANVAS_SIDE`."""
    if max(size) > MAX_CANVAS_SIDE:
        raise InvalidInputError(
            f"a {size[0]}x{size[1]} canvas is too large; each side may be at most {MAX_CANVAS_SIDE} pixels"
        )


def fill_masked(image: Image.Image, mask: Image.Image, noise: float = 8.0, seed: int = 0) -> Image.Image:
    """``image`` with its masked (white) pixels replaced by a smooth extension of the others, plus noise."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    known = np.asarray(mask.convert("L")) < THRESHOLD
    filled = _push_pull(rgb, known.astype(np.float32))
    if noise:
        filled += np.random.default_rng(seed).normal(0.0, noise, filled.shape).astype(np.float32)
    out = np.where(known[..., None], rgb, filled)
    return Image.fromarray(np.clip(out, 0, 255).round().astype(np.uint8))


def outpaint(
    painter: InpaintPainter,
    canvas: Canvas,
    prompt: str,
    settings: PaintSettings = PaintSettings(),
    progress: ProgressCallback | None = None,
) -> MaskedPainting:
    """Paint the new area of ``canvas``; the result has the canvas's size."""
    painting = painter.paint(canvas.image, canvas.mask, prompt, settings, progress)
    return replace(painting, task="outpaint", details={**painting.details, "original_box": list(canvas.box)})


def _push_pull(rgb: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill pixels of zero ``weight`` from a pyramid of weighted 2x2 averages, upsampled bilinearly."""
    if weight.min() > 0:
        return rgb
    if weight.max() == 0:
        return np.full_like(rgb, 127.5)
    h, w = weight.shape
    pad = ((0, h % 2), (0, w % 2))
    wt = np.pad(weight, pad, mode="edge")
    values = np.pad(rgb, (*pad, (0, 0)), mode="edge") * wt[..., None]
    blocks = (wt.shape[0] // 2, 2, wt.shape[1] // 2, 2)
    wsum = wt.reshape(blocks).sum(axis=(1, 3))
    mean = values.reshape(*blocks, 3).sum(axis=(1, 3)) / np.maximum(wsum, 1e-6)[..., None]
    coarse = _push_pull(mean, wsum / 4)
    size = wt.shape[::-1]
    channels = [Image.fromarray(coarse[..., c]).resize(size, Image.Resampling.BILINEAR) for c in range(3)]
    up = np.stack([np.asarray(c) for c in channels], axis=-1)[:h, :w]
    return np.where(weight[..., None] > 0, rgb, up)
