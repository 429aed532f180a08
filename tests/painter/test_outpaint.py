"""Outpainting: canvas geometry for every direction and aspect, the initial fill, and painting it."""

import numpy as np
import pytest
from PIL import Image

from llmga.errors import InvalidInputError
from llmga.masks import blend_mask
from llmga.painter.inpaint import InpaintPainter
from llmga.painter.outpaint import (
    MAX_CANVAS_SIDE,
    fill_masked,
    outpaint,
    outpaint_canvas,
    outpaint_to_aspect,
    parse_aspect,
)
from llmga.settings import PaintSettings


def two_colour_image(width=70, height=45):
    """Blue left half, red right half."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, width // 2, height))
    return image


def assert_canvas(canvas, original, size, box):
    assert canvas.image.size == canvas.mask.size == size and canvas.box == box
    assert canvas.image.crop(box).tobytes() == original.tobytes()
    expected = np.full(size[::-1], 255, np.uint8)
    expected[box[1] : box[3], box[0] : box[2]] = 0
    assert (np.asarray(canvas.mask) == expected).all()


@pytest.mark.parametrize(
    "margins, size, box",
    [
        ({"left": 20}, (90, 45), (20, 0, 90, 45)),
        ({"right": 33}, (103, 45), (0, 0, 70, 45)),
        ({"top": 7}, (70, 52), (0, 7, 70, 52)),
        ({"bottom": 50}, (70, 95), (0, 0, 70, 45)),
        ({"left": 3, "right": 5, "top": 7, "bottom": 9}, (78, 61), (3, 7, 73, 52)),
    ],
)
def test_canvas_geometry_for_each_margin(margins, size, box):
    original = two_colour_image()
    assert_canvas(outpaint_canvas(original, **margins), original, size, box)


@pytest.mark.parametrize(
    "aspect, direction, size, box",
    [
        ("16:9", "both", (80, 45), (5, 0, 75, 45)),
        (16 / 9, "left", (80, 45), (10, 0, 80, 45)),
        ("16/9", "right", (80, 45), (0, 0, 70, 45)),
        ((2, 1), "both", (90, 45), (10, 0, 80, 45)),
        ("9:16", "both", (70, 124), (0, 39, 70, 84)),  # 79 extra rows: the odd one goes down
        ("1", "top", (70, 70), (0, 25, 70, 70)),
        ("0.5", "bottom", (70, 140), (0, 0, 70, 45)),
    ],
)
def test_canvas_geometry_for_each_aspect(aspect, direction, size, box):
    original = two_colour_image()
    assert_canvas(outpaint_to_aspect(original, aspect, direction), original, size, box)


def test_any_mode_is_extended_as_rgb():
    original = two_colour_image().convert("P")
    canvas = outpaint_canvas(original.convert("RGBA"), right=10)
    assert canvas.image.mode == "RGB"
    assert canvas.image.crop(canvas.box).tobytes() == original.convert("RGB").tobytes()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda im: outpaint_canvas(im), "nothing to extend"),
        (lambda im: outpaint_canvas(im, left=-1, right=5), "must be >= 0"),
        (lambda im: outpaint_canvas(im, right=MAX_CANVAS_SIDE), "too large"),
        (lambda im: outpaint_to_aspect(im, "16:9", "top"), "grows left or right"),
        (lambda im: outpaint_to_aspect(im, "1:2", "right"), "grows top or bottom"),
        (lambda im: outpaint_to_aspect(im, 70 / 45), "already has aspect"),
        (lambda im: outpaint_to_aspect(im, 2.0, "sideways"), "not 'sideways'"),
    ],
)
def test_bad_requests_are_refused(call, message):
    with pytest.raises(InvalidInputError, match=message):
        call(two_colour_image())


@pytest.mark.parametrize("text", ["wide", "16:0", "-2", "0", "", "3:4:5"])
def test_unreadable_aspects(text):
    with pytest.raises(InvalidInputError, match="cannot read aspect ratio"):
        parse_aspect(text)


def test_initial_fill_continues_the_border_with_seeded_noise():
    original = two_colour_image()
    canvas = outpaint_canvas(original, left=30, right=30, seed=1)
    pixels = np.asarray(canvas.image).astype(int)
    left, right = pixels[:, :30], pixels[:, -30:]
    assert left[..., 2].mean() > 150 > left[..., 0].mean()  # blue continues to the left
    assert right[..., 0].mean() > 150 > right[..., 2].mean()  # red to the right
    assert left.std(axis=(0, 1)).min() > 2  # noise, not a flat colour
    again = outpaint_canvas(original, left=30, right=30, seed=1).image
    other = outpaint_canvas(original, left=30, right=30, seed=2).image
    assert canvas.image.tobytes() == again.tobytes() != other.tobytes()


def test_fill_masked_keeps_known_pixels_and_fills_holes_smoothly():
    image = Image.new("RGB", (32, 32), (0, 200, 0))
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (8, 8, 24, 24))
    filled = np.asarray(fill_masked(image, mask, noise=0))
    assert (filled == (0, 200, 0)).all()  # a hole in a flat image fills with that colour
    everything = fill_masked(image, Image.new("L", (32, 32), 255), noise=0)
    assert set(np.unique(everything)) == {128}  # nothing known: mid grey


@pytest.fixture(scope="module")
def painter(tiny):
    path = tiny.sd("sd15-inpaint")
    return InpaintPainter.load(path, device="cpu", blend=8)


@pytest.mark.parametrize("aspect, direction", [("16:9", "right"), ("3:4", "both")])
def test_outpaint_keeps_the_original_outside_the_seam_band(painter, aspect, direction):
    original = two_colour_image()
    canvas = outpaint_to_aspect(original, aspect, direction)
    painting = outpaint(painter, canvas, "a red and blue flag", PaintSettings(steps=2, seed=3))
    image = painting.images[0]
    assert image.size == canvas.image.size
    untouched = np.asarray(blend_mask(canvas.mask, painting.details["blend_band"])) == 0
    assert untouched.any()
    assert (np.asarray(image)[untouched] == np.asarray(canvas.image)[untouched]).all()
    new = np.asarray(canvas.mask) > 0
    assert (np.asarray(image)[new] != np.asarray(canvas.image)[new]).any(axis=-1).mean() > 0.5
    meta = painting.metadata(0)
    assert meta["task"] == "outpaint" and meta["original_box"] == list(canvas.box)
    assert (meta["width"], meta["height"]) == canvas.image.size
