"""Drawing scenes: deterministic, anti-aliased, thousands of small pictures per second.

The picture is a sky (a vertical gradient set by the time of day) over a
ground (the terrain's colour, lit by the time of day), with the horizon at
:data:`HORIZON` of the height. Each object is drawn in flat colour, centred in
its grid cell, with a radius of :data:`RADIUS` times the cell size. Object
colours are saturated and backgrounds muted, so every object colour stands
apart from every background pixel (a test checks the margin). Shapes are
drawn at :data:`SUPERSAMPLE` times the resolution and averaged down, which
gives soft, exact edges; everything is cached per picture size, so a render is
a few array blends.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from .scene import GRID, POSITIONS, Scene, WorldError

#: Object colours (RGB).
OBJECT_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 40),
    "orange": (255, 140, 0),
    "yellow": (250, 220, 20),
    "green": (40, 200, 70),
    "blue": (30, 70, 240),
    "purple": (150, 50, 210),
    "pink": (255, 120, 200),
}
#: Sky colour at the top and at the horizon, per time of day.
SKY_RGB: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "day": ((80, 150, 225), (170, 210, 240)),
    "sunset": ((70, 45, 110), (230, 110, 110)),
    "night": ((8, 12, 35), (30, 40, 85)),
}
#: Ground colour in daylight, per terrain.
GROUND_RGB: dict[str, tuple[int, int, int]] = {
    "grass": (55, 105, 35),
    "sand": (215, 190, 140),
    "snow": (235, 240, 250),
    "water": (35, 85, 135),
}
#: How each time of day lights the ground (per channel).
LIGHT: dict[str, tuple[float, float, float]] = {
    "day": (1.0, 1.0, 1.0),
    "sunset": (1.0, 0.85, 0.75),
    "night": (0.35, 0.35, 0.45),
}
#: Object radius as a fraction of the cell size. No shape reaches farther than 0.45 cells from its
#: centre, so an object leaves the pixels it shares with a neighbouring cell untouched.
RADIUS = {"small": 0.28, "large": 0.45}
HORIZON = 0.58
SUPERSAMPLE = 4
MIN_SIZE = 8


def render(scene: Scene, size: int = 32) -> Image.Image:
    """The scene as a ``size`` x ``size`` RGB picture (the same scene always gives the same pixels)."""
    return Image.fromarray(render_array(scene, size), "RGB")


def render_array(scene: Scene, size: int = 32) -> np.ndarray:
    """The scene as a ``(size, size, 3)`` uint8 array."""
    picture = background_array(scene.background.time, scene.background.terrain, size).copy()
    for obj in scene.objects:
        alpha = shape_alpha(obj.shape, obj.size, obj.position, size)[..., None]
        colour = np.asarray(OBJECT_RGB[obj.colour], dtype=np.float32)
        picture += alpha * (colour - picture)
    return np.clip(np.rint(picture), 0, 255).astype(np.uint8)


def render_batch(scenes: list[Scene], size: int = 32) -> np.ndarray:
    """Many scenes as one ``(n, size, size, 3)`` uint8 array."""
    return (
        np.stack([render_array(s, size) for s in scenes])
        if scenes
        else np.zeros((0, size, size, 3), np.uint8)
    )


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise WorldError(f"picture size must be an integer of at least {MIN_SIZE} pixels, got {size!r}")


@lru_cache(maxsize=256)
def background_array(time: str, terrain: str, size: int) -> np.ndarray:
    """The empty scene's float32 ``(size, size, 3)`` pixels (cached; do not modify)."""
    _check_size(size)
    rows = (np.arange(size, dtype=np.float32) + 0.5) / size
    top, horizon = (np.asarray(c, dtype=np.float32) for c in SKY_RGB[time])
    sky = top + (rows / HORIZON)[:, None] * (horizon - top)
    # The ground is a little darker far away (at the horizon) than near the viewer.
    depth = np.clip((rows - HORIZON) / (1 - HORIZON), 0, 1)
    shade = 0.85 + 0.15 * depth
    ground = np.asarray(GROUND_RGB[terrain], np.float32) * np.asarray(LIGHT[time], np.float32)
    ground = shade[:, None] * ground
    column = np.where((rows < HORIZON)[:, None], sky, ground)
    picture = np.repeat(column[:, None, :], size, axis=1)
    picture.setflags(write=False)
    return picture


def cell_box(position: str, size: int) -> tuple[float, float, float, float]:
    """The cell's (left, top, right, bottom) in pixels (fractional where ``size`` is not a multiple of 3)."""
    row, col = divmod(POSITIONS.index(position), GRID)
    cell = size / GRID
    return col * cell, row * cell, (col + 1) * cell, (row + 1) * cell


def _outline(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Polygon vertices of ``shape`` centred at (cx, cy) with radius ``r`` (all but the circle)."""

    def ring(radii: list[float], shift: float) -> list[tuple[float, float]]:
        n = len(radii)
        return [
            (
                cx + rad * math.cos(-math.pi / 2 + 2 * math.pi * i / n),
                cy + shift + rad * math.sin(-math.pi / 2 + 2 * math.pi * i / n),
            )
            for i, rad in enumerate(radii)
        ]

    if shape == "square":
        h = 0.85 * r
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "diamond":
        return ring([r] * 4, 0.0)
    if shape == "triangle":
        big = 1.1 * r  # circumradius; shifted down so the bounding box is centred
        return ring([big] * 3, big / 4)
    if shape == "star":
        big = 1.05 * r
        return ring([big, 0.5 * big] * 5, big * (1 - math.cos(math.pi / 5)) / 2)
    if shape == "cross":
        a, w = 1.0 * r, 0.38 * r
        return [
            (cx - w, cy - a),
            (cx + w, cy - a),
            (cx + w, cy - w),
            (cx + a, cy - w),
            (cx + a, cy + w),
            (cx + w, cy + w),
            (cx + w, cy + a),
            (cx - w, cy + a),
            (cx - w, cy + w),
            (cx - a, cy + w),
            (cx - a, cy - w),
            (cx - w, cy - w),
        ]
    raise WorldError(f"no drawing for shape {shape!r}")


@lru_cache(maxsize=4096)
def shape_alpha(shape: str, size_name: str, position: str, size: int) -> np.ndarray:
    """Coverage (0..1, float32 ``(size, size)``) of one object drawn in a ``size`` picture (cached)."""
    _check_size(size)
    ss = SUPERSAMPLE
    left, top, right, bottom = (v * ss for v in cell_box(position, size))
    cx, cy = (left + right) / 2, (top + bottom) / 2
    r = RADIUS[size_name] * (right - left)
    canvas = Image.new("L", (size * ss, size * ss), 0)
    draw = ImageDraw.Draw(canvas)
    # PIL fills pixel (i, j) when its corner lies inside; shift by half a pixel to sample pixel centres.
    if shape == "circle":
        draw.ellipse((cx - r - 0.5, cy - r - 0.5, cx + r - 0.5, cy + r - 0.5), fill=255)
    else:
        draw.polygon([(x - 0.5, y - 0.5) for x, y in _outline(shape, cx, cy, r)], fill=255)
    fine = np.asarray(canvas, dtype=np.float32) / 255.0
    alpha = fine.reshape(size, ss, size, ss).mean(axis=(1, 3))
    alpha.setflags(write=False)
    return alpha
