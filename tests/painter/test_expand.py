"""Growing an image to any size step by step, on tiny SD 1.5 stacks."""

import numpy as np
import pytest
from PIL import Image

from llmga.errors import InvalidInputError
from llmga.painter.expand import ExpandStep, expand, plan_expansion
from llmga.painter.inpaint import InpaintPainter
from llmga.painter.text_to_image import TextToImagePainter
from llmga.settings import PaintSettings

FAST = PaintSettings(steps=2, seed=5)


@pytest.fixture(scope="module")
def painter(tiny):
    path = tiny.sd("sd15-inpaint")
    return InpaintPainter.load(path, device="cpu", blend=8)


@pytest.fixture(scope="module")
def text_painter(tiny):
    return TextToImagePainter.load(tiny.sd(), device="cpu")


def start_image(seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8))


class Recorder:
    """A local-caption callback that records its arguments."""

    def __init__(self):
        self.calls = []

    def __call__(self, image, global_caption, step, total):
        self.calls.append((None if image is None else image.size, global_caption, step, total))
        return f"{global_caption}, part {step} of {total}"


def test_panorama_grows_right_with_local_captions(painter):
    captions, seen = Recorder(), []
    start = start_image()
    result = expand(
        painter, "a mountain range", (160, 64), FAST, image=start, overlap=16, anchor="left",
        local_caption=captions, progress=lambda step, total, canvas: seen.append((step, total, canvas.size)),
    )
    assert result.image.size == (160, 64)
    assert result.steps == [
        ExpandStep(1, (48, 0, 112, 64), "a mountain range, part 1 of 2"),
        ExpandStep(2, (96, 0, 160, 64), "a mountain range, part 2 of 2"),
    ]
    # each caption sees the image painted so far
    assert captions.calls == [((64, 64), "a mountain range", 1, 2), ((112, 64), "a mountain range", 2, 2)]
    assert seen == [(1, 2, (160, 64)), (2, 2, (160, 64))]
    band = 8  # the painter's blend band (working size equals the window)
    kept = np.asarray(result.image)[:, : 64 - band]
    assert (kept == np.asarray(start)[:, : 64 - band]).all()
    assert (np.asarray(result.image)[:, 64:] != 0).any()


def test_growing_in_two_dimensions_covers_the_target(painter):
    result = expand(painter, "a lake", (128, 112), FAST, image=start_image(), overlap=16)
    plan = plan_expansion((128, 112), (32, 24, 96, 88), (64, 64), 16)
    assert [s.box for s in result.steps] == plan and len(plan) == 8  # the start row, then outward
    covered = np.zeros((112, 128), bool)
    covered[24:88, 32:96] = True
    for _, (x0, y0, x1, y1), caption in result.steps:
        assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 112 and caption == "a lake"
        covered[y0:y1, x0:x1] = True
    assert covered.all() and result.image.size == (128, 112)


def test_no_start_image_paints_the_first_window_with_text_to_image(painter, text_painter):
    captions = Recorder()
    result = expand(painter, "a forest", (64, 128), FAST, window=(64, 64), anchor="top",
                    local_caption=captions, text_painter=text_painter)
    assert result.image.size == (64, 128) and len(result.steps) == 3
    assert captions.calls[0] == (None, "a forest", 1, 3)  # nothing painted yet
    first = text_painter.paint("a forest, part 1 of 3", PaintSettings(steps=2, seed=5, width=64, height=64))
    assert result.image.crop((0, 0, 64, 40)).tobytes() == first.images[0].crop((0, 0, 64, 40)).tobytes()


def test_no_start_image_and_no_text_painter_uses_a_full_mask(painter):
    result = expand(painter, "a forest", (96, 64), FAST)
    assert result.image.size == (96, 64) and [s.step for s in result.steps] == [1, 2, 3]
    # the first window is centred, then the others grow outward
    assert [s.box for s in result.steps] == [(16, 0, 80, 64), (32, 0, 96, 64), (0, 0, 64, 64)]


def test_same_seed_same_image(painter):
    first, again = (expand(painter, "a city", (96, 64), FAST, image=start_image()).image for _ in range(2))
    other = expand(painter, "a city", (96, 64), PaintSettings(steps=2, seed=6), image=start_image()).image
    assert first.tobytes() == again.tobytes() != other.tobytes()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": (100_000, 64)}, "too large"),
        ({"size": (8192, 16384)}, "too large; the limit is"),
        ({"size": (4096, 64), "max_steps": 10}, "takes 84 steps; the limit is 10"),
        ({"size": (32, 64)}, "larger than the target"),
        ({"size": (64, 64)}, "nothing to expand"),
        ({"size": (128, 64), "overlap": 64}, "overlap must be between 1 and 63"),
        ({"size": (128, 64), "anchor": "middle"}, "unknown anchor"),
        ({"size": (128, 64), "anchor": (1.5, 0)}, "anchor fractions"),
    ],
)
def test_absurd_requests_are_refused_before_painting(painter, kwargs, message):
    calls = Recorder()
    with pytest.raises(InvalidInputError, match=message):
        expand(painter, "a sea", image=start_image(), local_caption=calls, **kwargs)
    assert calls.calls == []


def test_text_to_image_window_must_be_a_multiple_of_8(painter, text_painter):
    with pytest.raises(InvalidInputError, match="multiples of 8"):
        expand(painter, "a sea", (200, 60), window=(60, 60), text_painter=text_painter)
