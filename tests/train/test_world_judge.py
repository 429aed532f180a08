"""Training the world judge."""

import json

from llmga.train.world_judge import train_judge
from llmga.world.judge import Judge


def test_short_training_lowers_the_loss_and_reports_every_attribute(tmp_path):
    _, report = train_judge(tmp_path, steps=30, batch_size=16, threads=None, eval_scenes=50, progress=False)
    curve = [loss for _, loss in report["loss_curve"]]
    assert curve[-1] < curve[0]
    assert set(report["clean"]) >= {
        "time",
        "terrain",
        "occupied",
        "colour",
        "shape",
        "size",
        "object",
        "scene",
    }
    assert report["training"]["steps"] == 30 and json.loads((tmp_path / "report.json").read_text())["n"] == 50
    assert Judge.load(tmp_path).config.training["steps"] == 30
