"""Mask geometry: outpaint borders on the requested sides and widths, brush strokes, boxes."""

import random

import numpy as np
import pytest
from PIL import Image

from llmga.errors import InvalidInputError
from llmga.masks import (
    NARROW,
    SIDES,
    WIDE,
    apply_mask,
    box_mask,
    brush_mask,
    outpaint_mask,
    random_mask,
    random_outpaint_sides,
)


def hidden(mask):
    return np.asarray(mask) == 255


@pytest.mark.parametrize(
    "sides",
    [
        {"left": 0.25},
        {"right": 0.1},
        {"top": 0.3, "bottom": 0.2},
        {"left": 0.4, "right": 0.4, "top": 0.1, "bottom": 0.15},
    ],
)
def test_outpaint_borders_cover_exactly_the_requested_sides_and_widths(sides):
    width, height = 100, 80
    left, right = (round(sides.get(side, 0) * width) for side in ("left", "right"))
    top, bottom = (round(sides.get(side, 0) * height) for side in ("top", "bottom"))
    rows, cols = np.mgrid[0:height, 0:width]
    expected = (cols < left) | (cols >= width - right) | (rows < top) | (rows >= height - bottom)
    mask = outpaint_mask((width, height), sides)
    assert mask.mode == "L" and mask.size == (width, height)
    assert (hidden(mask) == expected).all()
    assert set(np.unique(np.asarray(mask))) <= {0, 255}


def test_random_outpaint_widths_fall_in_their_ranges_and_leave_the_middle_visible():
    rng = random.Random(0)
    for width, (low, high) in (("narrow", NARROW), ("wide", WIDE)):
        for _ in range(50):
            sides = random_outpaint_sides(rng, width)
            assert sides and set(sides) <= set(SIDES)
            assert all(low <= f <= high for f in sides.values())
            mask = hidden(outpaint_mask((64, 64), sides))
            assert not mask[32, 32]


def test_bad_outpaint_requests_are_refused():
    with pytest.raises(InvalidInputError, match="unknown side"):
        outpaint_mask((10, 10), {"middle": 0.2})
    with pytest.raises(InvalidInputError, match="visible"):
        outpaint_mask((10, 10), {"left": 0.5, "right": 0.5})
    with pytest.raises(InvalidInputError, match="narrow"):
        random_outpaint_sides(random.Random(0), "huge")


def test_brush_and_box_masks_hide_part_of_the_picture_and_are_seeded():
    for make in (brush_mask, box_mask):
        for seed in range(20):
            share = hidden(make((64, 48), random.Random(seed))).mean()
            assert 0 < share < 0.9
        assert (hidden(make((64, 48), random.Random(3))) == hidden(make((64, 48), random.Random(3)))).all()


def test_random_mask_draws_the_allowed_kinds_only():
    rng = random.Random(1)
    kinds = {random_mask((32, 32), rng, kinds=("box", "outpaint"), widths=("wide",)).kind for _ in range(30)}
    assert kinds == {"box", "outpaint"}
    mask = random_mask((32, 32), random.Random(2), kinds=("outpaint",), widths=("wide",))
    assert mask.task == "outpaint" and mask.width == "wide" and mask.sides
    with pytest.raises(InvalidInputError):
        random_mask((32, 32), rng, kinds=("circle",))


def test_apply_mask_paints_the_hidden_region_only():
    image = Image.new("RGB", (20, 10), (10, 200, 30))
    masked = np.asarray(apply_mask(image, outpaint_mask((20, 10), {"left": 0.5}), fill=(0, 0, 0)))
    assert (masked[:, :10] == 0).all() and (masked[:, 10:] == (10, 200, 30)).all()
