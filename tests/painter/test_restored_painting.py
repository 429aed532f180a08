"""Inpainting, outpainting and growth with a restorer: each painting is repaired, then composited as before."""

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from llmga.errors import InvalidInputError
from llmga.masks import blend_mask, load_mask
from llmga.painter.expand import expand
from llmga.painter.inpaint import InpaintPainter
from llmga.painter.outpaint import outpaint, outpaint_canvas
from llmga.painter.suite import PainterSuite
from llmga.restore import Restorer
from llmga.settings import PaintSettings
from llmga.testing.tiny_restorer import build_tiny_restorer

FAST = PaintSettings(steps=2, seed=1)


class Counting(Restorer):
    """A real restorer that counts its calls."""

    calls = 0

    def restore(self, painted, reference, mask, progress=None):
        type(self).calls += 1
        return super().restore(painted, reference, mask, progress)


@pytest.fixture(scope="module")
def restorer_dir(tmp_path_factory):
    return build_tiny_restorer(tmp_path_factory.mktemp("restorer") / "tiny")


@pytest.fixture(scope="module")
def painters(tiny, restorer_dir):
    plain = InpaintPainter.load(tiny.sd("sd15-inpaint"), device="cpu", blend=8)
    restored = InpaintPainter(plain.pipeline, name="restored", blend=8, restorer=Counting.load(restorer_dir))
    return plain, restored


def picture(width, height, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_inpainting_is_repaired_inside_the_band_and_kept_beyond_it(painters):
    plain, restored = painters
    original, mask = picture(80, 64), Image.new("L", (80, 64))
    mask.paste(255, (20, 16, 50, 40))
    a, b = plain.paint(original, mask, "a cat", FAST), restored.paint(original, mask, "a cat", FAST)
    beyond = np.asarray(blend_mask(load_mask(mask), b.details["blend_band"])) == 0
    assert (np.asarray(b.images[0])[beyond] == np.asarray(original)[beyond]).all()
    assert not np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))
    assert np.array_equal(np.asarray(a.raw[0]), np.asarray(b.raw[0]))  # the same painting, repaired
    assert b.details["restorer"] and "restorer" not in a.details
    Counting.calls = 0
    skipped = restored.paint(original, mask, "a cat", replace(FAST, restore=False))  # this call only
    assert Counting.calls == 0 and "restorer" not in skipped.details
    assert np.array_equal(np.asarray(skipped.images[0]), np.asarray(a.images[0]))


def test_outpainting_and_each_step_of_growth_are_repaired(painters):
    _, restored = painters
    Counting.calls = 0
    canvas = outpaint_canvas(picture(64, 64), right=32)
    out = outpaint(restored, canvas, "more", FAST).images[0]
    assert Counting.calls == 1 and out.size == (96, 64)
    assert np.array_equal(np.asarray(out)[:, :56], np.asarray(canvas.image)[:, :56])
    grown = expand(restored, "a wide field", (128, 64), FAST, image=picture(64, 64), window=(64, 64), overlap=16)
    assert Counting.calls == 1 + len(grown.steps) and len(grown.steps) == 2


def test_the_suite_attaches_a_x1_restorer_and_refuses_others(tiny, restorer_dir, tmp_path):
    suite = PainterSuite.load(tiny.sd(), tiny.sd("sd15-inpaint"), restorer=restorer_dir)
    assert suite.inpaint.restorer is suite.restorer and "restorer" in suite.describe()
    with pytest.raises(InvalidInputError, match="×2 checkpoint"):
        PainterSuite.load(tiny.sd(), restorer=build_tiny_restorer(tmp_path / "x2", scale=2))
