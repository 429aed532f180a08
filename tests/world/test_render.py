"""Rendering: deterministic, fast, and every attribute visible where it should be."""

import itertools

import numpy as np
import pytest

from llmga.world import (
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    TERRAINS,
    TIMES,
    Background,
    Obj,
    Scene,
    WorldError,
    render,
    render_array,
    render_batch,
    sample_scene,
)
from llmga.world.regions import cell_pixels
from llmga.world.render import OBJECT_RGB, background_array, shape_alpha


def test_render_is_deterministic_rgb_of_the_asked_size():
    scene = sample_scene(5, 3)
    for size in (32, 48, 50):
        image = render(scene, size)
        assert image.mode == "RGB" and image.size == (size, size)
        assert np.array_equal(np.asarray(image), np.asarray(render(scene, size)))
    batch = render_batch([scene, scene], 32)
    assert batch.shape == (2, 32, 32, 3) and batch.dtype == np.uint8
    assert np.array_equal(batch[0], render_array(scene, 32))


def test_bad_size_is_refused():
    with pytest.raises(WorldError, match="at least"):
        render(Scene(), 4)


def test_every_object_colour_stands_apart_from_every_background_pixel():
    for name, rgb in OBJECT_RGB.items():
        gaps = [
            np.sqrt(((background_array(t, g, 64) - np.asarray(rgb)) ** 2).sum(-1)).min()
            for t in TIMES
            for g in TERRAINS
        ]
        assert min(gaps) > 80, f"{name} is too close to a background"
    colours = list(OBJECT_RGB.values())
    for a, b in itertools.combinations(colours, 2):
        assert np.linalg.norm(np.subtract(a, b)) > 80


@pytest.mark.parametrize("size", [32, 64])
def test_object_colour_fills_its_cell_centre_and_stays_inside_its_cell(size):
    for shape, obj_size, position in itertools.product(SHAPES, SIZES, POSITIONS):
        alpha = shape_alpha(shape, obj_size, position, size)
        left, top, right, bottom = cell_pixels(position, size)
        outside = alpha.copy()
        outside[top:bottom, left:right] = 0
        assert outside.max() == 0, f"{obj_size} {shape} at the {position} leaks out of its cell's pixels"
        colour = "red"
        scene = Scene((Obj(shape, colour, obj_size, position),), Background("night", "snow"))
        pixels = render_array(scene, size)
        cy, cx = (top + bottom) // 2, (left + right) // 2
        assert np.abs(pixels[cy, cx].astype(int) - OBJECT_RGB[colour]).max() <= 1


def test_colour_dominates_the_cell_and_sizes_and_shapes_differ():
    size = 32
    for colour, terrain in itertools.product(COLOURS, TERRAINS):
        scene = Scene((Obj("square", colour, "large", "bottom middle"),), Background("day", terrain))
        left, top, right, bottom = cell_pixels("bottom middle", size)
        cell = render_array(scene, size)[top:bottom, left:right].reshape(-1, 3).astype(int)
        near = np.linalg.norm(cell - OBJECT_RGB[colour], axis=1) < 30
        assert near.mean() > 0.4
    for shape in SHAPES:
        assert (
            shape_alpha(shape, "large", "center", size).sum()
            > 1.8 * shape_alpha(shape, "small", "center", size).sum()
        )
    masks = {s: shape_alpha(s, "small", "center", size) for s in SHAPES}
    for a, b in itertools.combinations(SHAPES, 2):
        assert np.abs(masks[a] - masks[b]).sum() > 3, f"small {a} and {b} look alike"


def test_background_shows_time_and_terrain():
    size = 32
    top_row, bottom_row = 1, size - 2
    skies = {t: background_array(t, "grass", size)[top_row, 0] for t in TIMES}
    grounds = {g: background_array("day", g, size)[bottom_row, 0] for g in TERRAINS}
    assert skies["night"].sum() < skies["sunset"].sum() < skies["day"].sum()
    assert len({tuple(v) for v in grounds.values()}) == len(TERRAINS)

