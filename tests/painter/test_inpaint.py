"""Inpainting on tiny SD 1.5 and SDXL inpainting stacks: sizes, modes, masks, the blend band."""

import time

import numpy as np
import pytest
from PIL import Image

from llmga.errors import InvalidInputError, ModelNotFoundError
from llmga.images import read_metadata, save_png
from llmga.masks import blend_mask, dilate, load_mask
from llmga.painter.inpaint import InpaintPainter
from llmga.painter.long_prompt import WINDOW
from llmga.painter.text_to_image import TextToImagePainter
from llmga.settings import PaintSettings

FAST = PaintSettings(steps=2, seed=1)
LONG_PROMPT = " ".join(["a red fox runs through deep snow under a pale winter sky with pine trees"] * 8)


@pytest.fixture(scope="module", params=["sd15-inpaint", "sdxl-inpaint"])
def painter(request, tiny):
    path = tiny.sd(request.param)
    return InpaintPainter.load(path, device="cpu", blend=8)


def noise_image(width, height, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def box_mask(width, height, box):
    mask = Image.new("L", (width, height))
    mask.paste(255, box)
    return mask


def assert_preserved_outside_band(painting, original, mask):
    """Pixels farther than the blend band from the mask are the input's own; the mask itself changed."""
    binary = np.asarray(load_mask(mask)) > 0
    outside = np.asarray(blend_mask(load_mask(mask), painting.details["blend_band"])) == 0
    expected = np.asarray(original.convert("RGB"))
    for image in painting.images:
        assert image.mode == "RGB" and image.size == original.size
        pixels = np.asarray(image)
        assert outside.any() and (pixels[outside] == expected[outside]).all()
        assert (pixels[binary] != expected[binary]).any(axis=-1).mean() > 0.5


def test_odd_size_keeps_size_and_pixels_outside_the_band(painter, tmp_path):
    image, mask = noise_image(70, 45), box_mask(70, 45, (20, 10, 45, 30))
    painting = painter.paint(image, mask, "a red fox", FAST)
    assert_preserved_outside_band(painting, image, mask)
    assert painting.details["working_size"] == [96, 64]  # shorter side to the model's 64, multiples of 8
    meta = read_metadata(save_png(painting.images[0], tmp_path, painting.metadata(0)))
    assert meta["task"] == "inpaint" and (meta["width"], meta["height"]) == (70, 45) and meta["seed"] == 1


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "1"])
def test_any_image_mode(painter, mode):
    image = noise_image(64, 48, seed=2).convert(mode)
    mask = box_mask(64, 48, (8, 8, 30, 30))
    painting = painter.paint(image, mask, "a red fox", FAST)
    assert_preserved_outside_band(painting, image, mask)


def test_large_image_is_painted_at_the_working_resolution(painter):
    image, mask = noise_image(300, 200), box_mask(300, 200, (40, 40, 120, 100))
    painting = painter.paint(image, mask, "a red fox", FAST)
    assert painting.details["working_size"] == [96, 64]
    assert painting.details["blend_band"] == 25  # 8 working pixels, scaled by 300/96
    assert_preserved_outside_band(painting, image, mask)


def test_seed_decides_the_painting(painter):
    image, mask = noise_image(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    first, again = (painter.paint(image, mask, "a red fox", FAST).images[0] for _ in range(2))
    other = painter.paint(image, mask, "a red fox", PaintSettings(steps=2, seed=2)).images[0]
    assert first.tobytes() == again.tobytes() != other.tobytes()


def test_long_prompt_several_images_and_progress(painter):
    image, mask = noise_image(64, 64), box_mask(64, 64, (0, 0, 32, 64))
    seen = []
    settings = PaintSettings(steps=3, num_images=2, negative_prompt="blurry")
    painting = painter.paint(image, mask, LONG_PROMPT, settings, progress=lambda i, n: seen.append((i, n)))
    assert painting.prompt_tokens > 2 * WINDOW and painting.prompt == LONG_PROMPT
    assert len(painting.images) == 2 and painting.images[0].tobytes() != painting.images[1].tobytes()
    assert_preserved_outside_band(painting, image, mask)
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_full_mask_repaints_everything(painter):
    image = noise_image(40, 56)
    painting = painter.paint(image, Image.new("L", (40, 56), 255), "a red fox", FAST)
    assert painting.images[0].size == (40, 56)
    assert (np.asarray(painting.images[0]) != np.asarray(image)).any(axis=-1).mean() > 0.9


def test_bad_masks_are_refused_clearly(painter):
    image = noise_image(70, 45)
    with pytest.raises(InvalidInputError, match="the mask is 64x64 but the image is 70x45"):
        painter.paint(image, Image.new("L", (64, 64), 255), "a fox", FAST)
    with pytest.raises(InvalidInputError, match="empty"):
        painter.paint(image, Image.new("L", (70, 45), 100), "a fox", FAST)  # grey below 128 keeps


def test_text_to_image_pipeline_inpaints_too(tiny):
    text_painter = TextToImagePainter.load(tiny.sd(), device="cpu")
    painter = InpaintPainter(text_painter.pipeline, blend=8)
    assert painter.pipeline.unet is text_painter.pipeline.unet  # components are shared, not copied
    image, mask = noise_image(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    assert_preserved_outside_band(painter.paint(image, mask, "a red fox", FAST), image, mask)
    with pytest.raises(InvalidInputError, match="strength"):
        InpaintPainter(painter.pipeline, strength=0)


def test_missing_model_fails_fast(tmp_path):
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        InpaintPainter.load(tmp_path / "nope")
    assert time.perf_counter() - start < 1.0


def test_mask_reading_rules(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (255, 255, 255, 0))  # transparent white: keep
    rgba.paste((255, 255, 255, 255), (0, 0, 4, 8))
    assert np.asarray(load_mask(rgba))[:, :4].all() and not np.asarray(load_mask(rgba))[:, 4:].any()
    grey = Image.new("L", (8, 8), 127)
    grey.paste(128, (0, 0, 2, 2))
    assert load_mask(grey).getbbox() == (0, 0, 2, 2)
    assert set(np.unique(load_mask(grey))) == {0, 255}
    array = np.zeros((8, 8), dtype=bool)
    array[2:4, 2:4] = True
    assert load_mask(array).getbbox() == (2, 2, 4, 4)
    Image.fromarray(array).save(tmp_path / "mask.png")  # mode "1"
    assert load_mask(tmp_path / "mask.png", size=(8, 8)).getbbox() == (2, 2, 4, 4)
    assert load_mask(np.zeros((8, 8), bool), allow_empty=True).getbbox() is None
    with pytest.raises(InvalidInputError, match="cannot read mask"):
        load_mask(tmp_path / "missing.png")
    with pytest.raises(InvalidInputError, match="2-D bool or uint8"):
        load_mask(np.zeros((8, 8), dtype=np.float32))


@pytest.mark.parametrize("band", [0, 1, 6, 9])
def test_blend_band_is_one_on_the_mask_and_zero_past_the_band(band):
    mask = box_mask(60, 40, (20, 10, 30, 25))
    alpha = np.asarray(blend_mask(mask, band)).astype(int)
    assert (alpha[np.asarray(mask) > 0] == 255).all()
    assert (alpha[np.asarray(dilate(mask, band)) == 0] == 0).all()
    row = alpha[17, 29 : 30 + band + 1]  # from the mask's last column outward
    assert row[0] == 255 and row[-1] == 0 and (np.diff(row) <= 0).all()
    assert band < 2 or 0 < row[band // 2 + 1] < 255  # a ramp, not a step
