"""Masks over a world picture's cells, boxes and borders."""

import json
import random

import numpy as np
import pytest

from llmga.errors import InvalidInputError
from llmga.world import (
    POSITIONS,
    SHAPES,
    Scene,
    WorldError,
    cell_mask,
    outpaint_mask,
    random_mask,
    sample_scene,
    scene_masks,
)
from llmga.world.regions import touched_positions
from llmga.world.render import shape_alpha


@pytest.mark.parametrize("size", [32, 48, 64])
def test_cell_masks_tile_the_picture_and_hold_their_object(size):
    total = np.zeros((size, size), int)
    for position in POSITIONS:
        mask = np.asarray(cell_mask(position, size).image) > 0
        total += mask
        for shape in SHAPES:
            assert shape_alpha(shape, "large", position, size)[~mask].max() == 0
        assert touched_positions(cell_mask(position, size).image) == (position,)
    assert (total == 1).all()  # the cells tile the picture


def test_outpaint_and_box_masks():
    mask = outpaint_mask(32, {"left": 0.25, "top": 0.5})
    pixels = np.asarray(mask.image) > 0
    assert mask.task == "outpaint" and mask.sides == {"left": 0.25, "top": 0.5}
    assert pixels[:, :8].all() and pixels[:16].all() and not pixels[16:, 8:].any()
    wide = outpaint_mask(32, width="wide", rng=3)
    assert wide.width == "wide" and all(0.25 <= f <= 0.4 for f in wide.sides.values())
    with pytest.raises(InvalidInputError, match="visible"):
        outpaint_mask(32, {"left": 0.6, "right": 0.5})
    rng = random.Random(0)
    for _ in range(20):
        box = random_mask(Scene(), rng, 32, kinds=("box",))
        x0, y0, x1, y1 = box.image.getbbox()
        assert (np.asarray(box.image)[y0:y1, x0:x1] == 255).all()  # one solid rectangle


def test_scene_masks_and_their_json():
    scene = sample_scene(2, 3, min_objects=3)
    masks = scene_masks(scene, 0, 32)
    assert [m.kind for m in masks] == ["cell"] * 3 + ["box", "outpaint", "outpaint"]
    assert [m.position for m in masks[:3]] == [o.position for o in scene.objects]
    json.dumps([m.to_dict() for m in masks])
    with pytest.raises(WorldError, match="mask kinds"):
        random_mask(scene, 0, 32, kinds=("brush",))
