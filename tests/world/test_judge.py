"""The judge: plumbing, saving and loading, augmentation, a short training run, and the shipped judge."""

import json

import numpy as np
import pytest
import torch

from llmga.errors import ModelNotFoundError
from llmga.world import Scene, WorldError, render, sample_scene
from llmga.world.judge import ASSET_DIR, CONFIG_NAME, Judge, JudgeConfig, augment, scene_targets, to_tensor
from tests.world.scenes import NIGHT_SCENE as SCENE


def test_untrained_judge_reads_any_picture_form_into_scenes():
    judge = Judge.new()
    image = render(SCENE)
    for form in (
        image,
        [image, image],
        np.asarray(image),
        np.stack([np.asarray(image)] * 2),
        to_tensor([image]),
    ):
        scenes = judge.read(form)
        assert all(isinstance(s, Scene) for s in scenes) and len(scenes) in (1, 2)
    reading = judge.read_attributes(image)[0]
    assert set(reading) == {"time", "time_p", "terrain", "terrain_p", "cells"}
    assert len(reading["cells"]) == 9 and 0 <= reading["cells"]["center"]["object_p"] <= 1
    assert judge.features([image, render(SCENE, 64)]).shape == (2, 9 * judge.config.widths[-1])
    assert judge.read([]) == []


def test_bad_pictures_and_configs_are_refused():
    with pytest.raises(WorldError, match="RGB"):
        to_tensor(np.zeros((2, 32, 32)))
    with pytest.raises(WorldError, match="multiple of 24"):
        Judge.new(JudgeConfig(input_size=40))


def test_save_load_round_trip(tmp_path):
    judge = Judge.new(seed=3)
    judge.save(tmp_path)
    loaded = Judge.load(tmp_path)
    x = render(SCENE)
    for key, value in judge.logits(x).items():
        assert torch.equal(value, loaded.logits(x)[key])
    assert json.loads((tmp_path / CONFIG_NAME).read_text())["positions"][0] == "top left"


def test_load_errors_name_the_fix(tmp_path):
    with pytest.raises(ModelNotFoundError, match="llmga train judge"):
        Judge.load(tmp_path / "nothing")
    Judge.new().save(tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    config["colours"] = ["red", "blue"]
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(WorldError, match="retrain"):
        Judge.load(tmp_path)


def test_augment_is_seeded_light_and_in_range():
    x = to_tensor([render(sample_scene(i, 3)) for i in range(16)])
    a = augment(x, torch.Generator().manual_seed(0))
    b = augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape
    assert 0 <= a.min() and a.max() <= 1
    assert 0 < (a - x).abs().mean() < 0.1


def test_targets_follow_the_scene():
    config = JudgeConfig()
    t = scene_targets([SCENE], config)
    assert t["occupied"][0].tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 0]
    assert t["colour"][0, 0] == config.colours.index("red") and t["colour"][0, 1] == -100
    assert t["shape"][0, 4] == config.shapes.index("square") and t["size"][0, 4] == config.sizes.index(
        "small"
    )
    assert t["time"].tolist() == [config.times.index("night")]




shipped = pytest.mark.skipif(
    not (ASSET_DIR / CONFIG_NAME).is_file(), reason="no judge shipped in assets/judge"
)




