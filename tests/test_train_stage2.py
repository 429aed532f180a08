"""Stage-2 training on tiny SD stacks: only the UNet learns, prompts cached, result loads as a painter."""

import json

import pytest
import torch
from PIL import Image

from llmga.painter import PaintSettings, TextToImagePainter
from llmga.testing import build_tiny_causal_lm, build_tiny_sd
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
def test_only_the_unet_changes_and_the_result_paints(variant, tmp_path):
    from diffusers import DiffusionPipeline

    sd = build_tiny_sd(tmp_path / "sd", variant=variant)
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


def test_brain_prompts_are_asked_once_and_cached(tmp_path):
    source = make_source(tmp_path / "src", n=2)
    config = Stage2Config(painter="unused", source=source, out=str(tmp_path / "run"),
                          brain=str(build_tiny_causal_lm(tmp_path / "lm")))
    _, prompts, first = collect_prompts(config)
    _, again, second = collect_prompts(config)
    assert (first.asked, first.reused) == (2, 0)
    assert (second.asked, second.reused) == (0, 2) and again == prompts


def test_captions_are_used_when_no_brain_is_given(tmp_path):
    _, prompts, report = collect_prompts(Stage2Config(painter="x", source=make_source(tmp_path / "s"), out=str(tmp_path)))
    assert prompts == ["a red square", "a blue square", "a green square", "a yellow square"] and report.skipped == 0


def test_stage2_command(tmp_path):
    from typer.testing import CliRunner

    from llmga.cli import app

    sd = build_tiny_sd(tmp_path / "sd")
    result = CliRunner().invoke(app, ["train", "stage2", "--painter", str(sd), "--source", make_source(tmp_path / "s"),
                                      "--out", str(tmp_path / "run"), "--resolution", "64", "--max-steps", "1"])
    assert result.exit_code == 0, result.output
    assert TextToImagePainter.load(tmp_path / "run" / "final")


def test_pixel_weights_move_the_loss_within_a_picture_not_between_pictures():
    from diffusers import DDPMScheduler

    from llmga.train.stage2 import weighted_mse

    scheduler = DDPMScheduler()
    t = torch.tensor([10, 10])
    target = torch.zeros(2, 4, 2, 2)
    prediction = target.clone()
    prediction[:, :, 0, 0] = 2.0  # wrong by 2 at one pixel of each picture: squared error 4 there, 1 on average
    plain = weighted_mse(prediction, target, scheduler, t, None)
    assert plain.item() == pytest.approx(1.0)
    assert weighted_mse(prediction, target, scheduler, t, None, torch.ones(2, 1, 2, 2)).item() == pytest.approx(1.0)
    where = torch.ones(2, 1, 2, 2)
    where[:, :, 0, 0] = 5.0  # the wrong pixel weighs 5 of 8
    assert weighted_mse(prediction, target, scheduler, t, None, where).item() == pytest.approx(4 * 5 / 8)
    assert weighted_mse(prediction, target, scheduler, t, 5.0, where).item() < 4 * 5 / 8  # min-SNR still applies
