"""Restoring pictures: composited back, padded, tiled, checked, saved and loaded."""

import numpy as np
import pytest
from PIL import Image

from llmga.errors import InvalidInputError, ModelNotFoundError
from llmga.restore import Restorer
from llmga.testing.tiny_restorer import build_tiny_restorer as tiny_restorer


def picture(size, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def border(size, width):
    mask = Image.new("L", size, 0)
    mask.paste(255, (size[0] - width, 0, size[0], size[1]))
    return mask


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_restorer(tmp_path_factory.mktemp("restorer") / "tiny")


def test_kept_pixels_are_the_originals_and_the_painted_ones_change(folder):
    restorer = Restorer.load(folder)
    original, painted = picture((45, 37)), picture((45, 37), seed=1)  # odd sizes: padded and cropped back
    out = np.asarray(restorer.restore(painted, original, border((45, 37), 12)))
    assert out.shape == (37, 45, 3)
    assert np.array_equal(out[:, :33], np.asarray(original)[:, :33])
    assert not np.array_equal(out[:, 33:], np.asarray(painted)[:, 33:])
    assert np.array_equal(out, np.asarray(restorer.restore(painted, original, border((45, 37), 12))))  # seeded


def test_large_pictures_run_only_the_tiles_that_touch_the_mask(folder):
    restorer = Restorer.load(folder, tile=64, overlap=32)
    calls = []
    original = picture((200, 100))
    out = restorer.restore(picture((200, 100), 2), original, border((200, 100), 20),
                           progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (6, 6)  # of 6 x 3 tiles (64 px, 32 overlap), the two right columns
    assert np.array_equal(np.asarray(out)[:, :180], np.asarray(original)[:, :180])


def test_wrong_sizes_and_scales_get_one_clear_line(folder, tmp_path):
    restorer = Restorer.load(folder)
    with pytest.raises(InvalidInputError, match="the mask is 30x30 but the image is 40x40") as mask_error:
        restorer.restore(picture((40, 40)), picture((40, 40)), border((30, 30), 5))
    with pytest.raises(InvalidInputError, match="the reference is 30x30 but the restored picture is 40x40") as ref:
        restorer.restore(picture((40, 40)), picture((30, 30)), border((40, 40), 5))
    x2 = Restorer.load(tiny_restorer(tmp_path / "x2", scale=2))
    with pytest.raises(InvalidInputError, match="×2 checkpoint but this restores at ×1") as scale_error:
        x2.check_scale(1)
    for error in (mask_error, ref, scale_error):
        assert "\n" not in str(error.value)
    out = x2.restore(picture((20, 16)), picture((40, 32)), border((40, 32), 8))
    assert out.size == (40, 32)
    with pytest.raises(ModelNotFoundError, match="no restorer at"):
        Restorer.load(tmp_path / "nowhere")


def test_float16_folders_restore_as_their_float32_network(folder):
    restorer = Restorer.load(folder)
    assert restorer.net.G.patch_embed.proj.weight.dtype.is_floating_point
    assert "DiffRIR ×1" in restorer.describe()
