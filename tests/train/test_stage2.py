"""Stage-2 training on tiny SD stacks: only the UNet learns, prompts cached, result loads as a painter."""

import json

import pytest
import torch
from PIL import Image

from llmga.painter import TextToImagePainter
from llmga.settings import PaintSettings
from llmga.train.stage2 import Stage2Config, collect_prompts, train_stage2


def make_source(root, n=4):
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, color in enumerate(["red", "blue", "green", "yellow"][:n]):
        Image.new("RGB", (80, 64), color).save(root / f"{i}.png")
        lines.append(json.dumps({"image": f"{i}.png", "caption": f"a {color} square"}))
    (root / "data.jsonl").write_text("\n".join(lines) + "\n")
    return str(root / "data.jsonl")


def weights(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("variant", ["sd15", "sd15-inpaint", "sd2"])
def test_only_the_unet_changes_and_the_result_paints(variant, tiny, tmp_path):
    from diffusers import DiffusionPipeline

    sd = tiny.sd(variant)
    before = DiffusionPipeline.from_pretrained(sd)
    final = train_stage2(Stage2Config(painter=str(sd), source=make_source(tmp_path / "src"), out=str(tmp_path / "run"),
                                      resolution=64, max_steps=3, batch_size=2, lr=1e-3, save_every=2,
                                      ema_decay=0.9 if variant == "sd15" else None, snr_gamma=5.0, uncond_prob=0.5))
    after = DiffusionPipeline.from_pretrained(final)
    changed = [k for k, v in weights(after.unet).items() if not torch.equal(v, weights(before.unet)[k])]
    assert changed
    for part in ("vae", "text_encoder"):
        for k, v in weights(getattr(after, part)).items():
            assert torch.equal(v, weights(getattr(before, part))[k]), f"{part}.{k} changed"
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-0000002", "step-0000003"]
    if variant != "sd15-inpaint":
        painting = TextToImagePainter.load(final).paint("a red square", PaintSettings(steps=2, width=64, height=64))
        assert painting.images[0].size == (64, 64)


def test_brain_prompts_are_asked_once_and_cached(tiny, tmp_path):
    source = make_source(tmp_path / "src", n=2)
    config = Stage2Config(painter="unused", source=source, out=str(tmp_path / "run"),
                          brain=str(tiny.causal_lm()))
    _, prompts, first = collect_prompts(config)
    _, again, second = collect_prompts(config)
    assert (first.asked, first.reused) == (2, 0)
    assert (second.asked, second.reused) == (0, 2) and again == prompts


def test_captions_are_used_when_no_brain_is_given(tmp_path):
    _, prompts, report = collect_prompts(Stage2Config(painter="x", source=make_source(tmp_path / "s"), out=str(tmp_path)))
    assert prompts == ["a red square", "a blue square", "a green square", "a yellow square"] and report.skipped == 0


def test_stage2_command(tiny, tmp_path):
    from typer.testing import CliRunner

    from llmga.cli import app

    sd = tiny.sd()
    result = CliRunner().invoke(app, ["train", "stage2", "--painter", str(sd), "--source", make_source(tmp_path / "s"),
                                      "--out", str(tmp_path / "run"), "--resolution", "64", "--max-steps", "1"])
    assert result.exit_code == 0, result.output
    assert TextToImagePainter.load(tmp_path / "run" / "final")


def test_min_snr_weights_scale_each_sample_by_its_timestep():
    from diffusers import DDPMScheduler
    from diffusers.training_utils import compute_snr

    from llmga.train.stage2 import weighted_mse

    scheduler = DDPMScheduler()
    t = torch.tensor([10, 900])
    target = torch.zeros(2, 4, 2, 2)
    prediction = target.clone()
    prediction[:, :, 0, 0] = 2.0  # wrong by 2 at one pixel of each picture: squared error 4 there, 1 on average
    assert weighted_mse(prediction, target, scheduler, t, None).item() == pytest.approx(1.0)
    snr = compute_snr(scheduler, t)
    expected = (torch.clamp(snr, max=5.0) / snr).mean().item()  # the easy (low-noise) sample weighs less
    assert weighted_mse(prediction, target, scheduler, t, 5.0).item() == pytest.approx(expected, rel=1e-5)
    assert expected < 1.0


def test_hole_weights_make_an_error_in_the_hole_count_more():
    from diffusers import DDPMScheduler

    from llmga.train.stage2 import hole_weights, weighted_mse

    scheduler = DDPMScheduler()
    t = torch.tensor([500])
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :2] = 1  # a hole of 4 pixels out of 16
    target = torch.zeros(1, 4, 4, 4)
    in_hole, outside = target.clone(), target.clone()
    in_hole[..., 0, 0] = 1.0
    outside[..., 3, 3] = 1.0
    plain = hole_weights(mask, 1.0)
    assert weighted_mse(in_hole, target, scheduler, t, None, plain).item() == pytest.approx(1 / 16)
    assert weighted_mse(outside, target, scheduler, t, None, plain).item() == pytest.approx(1 / 16)
    weights = hole_weights(mask, 5.0)  # 4 hole pixels weigh 5 each, 12 others 1: 32 in all
    assert weighted_mse(in_hole, target, scheduler, t, None, weights).item() == pytest.approx(5 / 32)
    assert weighted_mse(outside, target, scheduler, t, None, weights).item() == pytest.approx(1 / 32)
