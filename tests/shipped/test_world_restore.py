"""The shipped world restorer (DiffRIR₂): on by default for in/outpainting, cheap, and it narrows the seams."""

import random

import numpy as np
import pytest

from llmga import registry
from llmga.eval.restoration import seam_step
from llmga.masks import outpaint_mask, random_outpaint_sides
from llmga.painter.inpaint import InpaintPainter
from llmga.profiles import load_profile
from llmga.restore import Restorer
from llmga.settings import PaintSettings
from llmga.world.render import render
from llmga.world.scene import sample_scene

pytestmark = pytest.mark.shipped


@pytest.fixture(scope="module")
def outpaintings():
    painter = InpaintPainter.load("world-inpaint")
    rng = random.Random("shipped-restore")
    items = []
    for i in range(24):
        picture = render(sample_scene(rng, 3, min_objects=0), 32)
        mask = outpaint_mask((32, 32), random_outpaint_sides(rng, "wide"))
        items.append((picture, mask, painter.paint(picture, mask, "", PaintSettings(steps=20, guidance=4.0, seed=i))))
    return painter, items


def test_the_offline_default_restores_in_and_outpaintings(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no config file: the built-in default
    monkeypatch.delenv("LLMGA_CONFIG", raising=False)
    profile = load_profile()
    assert profile.restorer == "world-restore" and registry.shipped("world-restore", registry.RESTORER)
    restorer = Restorer.load("world-restore")
    assert restorer.scale == 1 and restorer.config.reference
    size = sum(f.stat().st_size for f in registry.shipped("world-restore", registry.RESTORER).iterdir())
    assert size < 5e6


def test_restoring_narrows_the_brightness_step_at_the_seam(outpaintings):
    _, items = outpaintings
    restorer = Restorer.load("world-restore")
    before = [seam_step(p.images[0], picture, mask)[1] for picture, mask, p in items]
    after = [seam_step(restorer.restore(p.raw[0], picture, mask), picture, mask)[1] for picture, mask, p in items]
    assert np.mean(after) < np.mean(before)
