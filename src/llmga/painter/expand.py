"""Growing an image to any size, one overlapping window at a time.

After "Zero-shot Text-guided Infinite Image Synthesis with LLM guidance": a
global caption holds the whole picture together, and before each step a local
caption (from the assistant, through the ``local_caption`` callback) says what
the next window shows. Each step outpaints one window: the part of it already
painted (at least ``overlap`` pixels along the growing side) is the context,
the rest is painted, and the painted pixels are blended in across the
painter's blend band, so no seam shows and earlier pixels farther than the
band from the new area stay as they were.

Windows are laid on a grid anchored at the start image: first along the start
row, outward from the start (nearest first, right/down before left/up), then
row by row outward. With no start image the first window is painted from
scratch, by ``text_painter`` if one is given, else by the inpainting painter
with a full mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import chain, zip_longest
from typing import NamedTuple

import numpy as np
from PIL import Image

from ..errors import InvalidInputError
from ..images import ImageLike, as_rgb
from ..settings import PaintSettings
from .inpaint import InpaintPainter
from .outpaint import Box, check_canvas_size, fill_masked
from .text_to_image import TextToImagePainter

#: (image painted so far or None, global caption, step, total steps) -> the step's prompt
LocalCaption = Callable[[Image.Image | None, str, int, int], str]
#: called after each step with (step, total steps, the canvas so far)
StepProgress = Callable[[int, int, Image.Image], None]

#: the largest target in pixels (8192x8192); each side is also capped at MAX_CANVAS_SIDE
MAX_PIXELS = 2**26
ANCHORS = {
    "center": (0.5, 0.5), "left": (0.0, 0.5), "right": (1.0, 0.5), "top": (0.5, 0.0), "bottom": (0.5, 1.0),
    "top-left": (0.0, 0.0), "top-right": (1.0, 0.0), "bottom-left": (0.0, 1.0), "bottom-right": (1.0, 1.0),
}


class ExpandStep(NamedTuple):
    """One painted window: its 1-based step number, its box in the final image, and its prompt."""

    step: int
    box: Box
    caption: str


@dataclass
class Expansion:
    """The grown image and the steps that painted it."""

    image: Image.Image
    steps: list[ExpandStep]


def expand(
    painter: InpaintPainter,
    global_caption: str,
    size: tuple[int, int],
    settings: PaintSettings = PaintSettings(),
    *,
    image: ImageLike | None = None,
    window: tuple[int, int] | None = None,
    overlap: int | None = None,
    anchor: str | tuple[float, float] = "center",
    local_caption: LocalCaption | None = None,
    text_painter: TextToImagePainter | None = None,
    progress: StepProgress | None = None,
    max_steps: int = 64,
) -> Expansion:
    """Grow ``image`` (or a first painting) to ``size`` (width, height) step by step.

    ``window`` (default: the start image's size, else the painter's working
    side, clipped to ``size``) is the area painted per step; consecutive
    windows share ``overlap`` pixels (default: a quarter of the window's
    shorter side). ``anchor`` places the start in the target (a name in
    :data:`ANCHORS` or x, y fractions). The prompt of each step is
    ``local_caption(image so far, global_caption, step, total)`` (default: the
    global caption); step ``n`` uses seed ``settings.seed + n - 1``, one image.
    Targets over :data:`MAX_PIXELS` or needing more than ``max_steps`` steps are refused.
    """
    start = None if image is None else as_rgb(image)
    target = _check_target(size, start)
    window = window or (start.size if start else (painter.working_side, painter.working_side))
    win = (min(window[0], target[0]), min(window[1], target[1]))
    overlap = min(win) // 4 if overlap is None else overlap
    _check_window(win, overlap, text_first=start is None and text_painter is not None)
    start_box = _place(start.size if start else win, target, anchor)
    plan = plan_expansion(target, start_box, win, overlap, start_painted=start is not None)
    if len(plan) > max_steps:
        raise InvalidInputError(
            f"growing to {target[0]}x{target[1]} with a {win[0]}x{win[1]} window and {overlap} px overlap "
            f"takes {len(plan)} steps; the limit is {max_steps} "
            "(raise max_steps, or use a larger window or a smaller overlap)"
        )

    canvas = Image.new("RGB", target)
    painted = np.zeros(target[::-1], dtype=bool)
    if start is not None:
        canvas.paste(start, start_box)
        painted[_rows_cols(start_box)] = True
    steps: list[ExpandStep] = []
    for n, box in enumerate(plan, 1):
        caption = (local_caption or _global)(_painted_part(canvas, painted), global_caption, n, len(plan))
        step_settings = replace(settings, seed=settings.seed + n - 1, num_images=1, width=None, height=None)
        known = painted[_rows_cols(box)]
        if text_painter is not None and not known.any():
            tile = text_painter.paint(caption, replace(step_settings, width=win[0], height=win[1])).images[0]
        else:
            mask = Image.fromarray(np.where(known, 0, 255).astype(np.uint8))
            context = fill_masked(canvas.crop(box), mask, seed=step_settings.seed)
            tile = painter.paint(context, mask, caption, step_settings).images[0]
        canvas.paste(tile, box[:2])
        painted[_rows_cols(box)] = True
        steps.append(ExpandStep(n, box, caption))
        if progress is not None:
            progress(n, len(plan), canvas)
    return Expansion(canvas, steps)


def plan_expansion(
    size: tuple[int, int], start_box: Box, window: tuple[int, int], overlap: int, start_painted: bool = True
) -> list[Box]:
    """The windows :func:`expand` paints, in order, growing outward from ``start_box``."""
    xs = _offsets(size[0], start_box[0], window[0], overlap)
    ys = _offsets(size[1], start_box[1], window[1], overlap)
    painted = np.zeros(size[::-1], dtype=bool)
    if start_painted:
        painted[_rows_cols(start_box)] = True
    plan = []
    for y in ys:
        for x in xs:
            box = (x, y, x + window[0], y + window[1])
            if not painted[_rows_cols(box)].all():
                plan.append(box)
                painted[_rows_cols(box)] = True
    return plan


def _offsets(length: int, start: int, window: int, overlap: int) -> list[int]:
    """Window offsets along one axis: at the start, then outward both ways, nearest first."""
    first = min(max(start, 0), length - window)
    stride = window - overlap
    forward, offset = [], first
    while offset + window < length:
        offset = min(offset + stride, length - window)
        forward.append(offset)
    back, offset = [], first
    while offset > 0:
        offset = max(offset - stride, 0)
        back.append(offset)
    return [first, *(p for p in chain.from_iterable(zip_longest(forward, back)) if p is not None)]


def _check_target(size: tuple[int, int], start: Image.Image | None) -> tuple[int, int]:
    width, height = (int(s) for s in size)
    if width < 8 or height < 8:
        raise InvalidInputError(f"the target size must be at least 8x8, got {width}x{height}")
    check_canvas_size((width, height))
    if width * height > MAX_PIXELS:
        raise InvalidInputError(f"a {width}x{height} target is too large; the limit is {MAX_PIXELS:,} pixels")
    if start is not None:
        if start.width > width or start.height > height:
            raise InvalidInputError(
                f"the start image ({start.width}x{start.height}) is larger than the target {width}x{height}"
            )
        if start.size == (width, height):
            raise InvalidInputError(f"the start image is already {width}x{height}: nothing to expand")
    return width, height


def _check_window(window: tuple[int, int], overlap: int, text_first: bool) -> None:
    if not 0 < overlap < min(window):
        raise InvalidInputError(
            f"overlap must be between 1 and {min(window) - 1} pixels "
            f"for a {window[0]}x{window[1]} window, got {overlap}"
        )
    if text_first and any(side % 8 for side in window):
        raise InvalidInputError(
            f"the first window is painted by text-to-image, so its sides must be multiples of 8, got {window}"
        )


def _place(inner: tuple[int, int], outer: tuple[int, int], anchor: str | tuple[float, float]) -> Box:
    """The box of size ``inner`` placed in ``outer`` at ``anchor``."""
    if isinstance(anchor, str):
        if anchor not in ANCHORS:
            names = ", ".join(ANCHORS)
            raise InvalidInputError(f"unknown anchor {anchor!r}; use one of {names} or (x, y) fractions")
        anchor = ANCHORS[anchor]
    if not all(0 <= f <= 1 for f in anchor):
        raise InvalidInputError(f"anchor fractions must lie in [0, 1], got {anchor}")
    left, top = (round((o - i) * f) for o, i, f in zip(outer, inner, anchor))
    return (left, top, left + inner[0], top + inner[1])


def _rows_cols(box: Box) -> tuple[slice, slice]:
    return slice(box[1], box[3]), slice(box[0], box[2])


def _painted_part(canvas: Image.Image, painted: np.ndarray) -> Image.Image | None:
    """The canvas cropped to what has been painted so far (None before the first step)."""
    if not painted.any():
        return None
    rows, cols = np.flatnonzero(painted.any(axis=1)), np.flatnonzero(painted.any(axis=0))
    return canvas.crop((cols[0], rows[0], cols[-1] + 1, rows[-1] + 1))


def _global(image: Image.Image | None, global_caption: str, step: int, total: int) -> str:
    return global_caption
