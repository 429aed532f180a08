"""The tables' shared pieces: tiny world test sets, tiny measuring backbones, a run over them."""

import pytest

from llmga.data.world_layouts import export
from llmga.eval.runs import Run
from llmga.settings import PaintSettings, SamplingSettings
from llmga.testing.tiny_backbones import build_tiny_clip, build_tiny_dino, build_tiny_inception, build_tiny_lpips

FAST = PaintSettings(steps=2, guidance=2.0, width=64, height=64)


@pytest.fixture(scope="session")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("world-sets")
    return {layout: export(layout, root / layout, 3, seed=0) for layout in ("coco", "magicbrush", "places")}


@pytest.fixture(scope="session")
def backbone_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("backbones")
    return {"inception": build_tiny_inception(root / "inception-2015-12-05.pt"), "clip": build_tiny_clip(root / "clip"),
            "dino": build_tiny_dino(root / "dino"), "lpips": build_tiny_lpips(root / "lpips")}


def new_run(path, files):
    from llmga.eval.backbones import real_backbones

    return Run(path, real_backbones(**files), sampling=SamplingSettings(temperature=0, max_new_tokens=12))
