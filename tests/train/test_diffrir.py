"""``llmga train restore``: three stages on an image folder with real seams, resumable, ending in a restorer."""

import numpy as np
import torch
from PIL import Image

from llmga.restore import Restorer
from llmga.train.seam_data import SeamConfig, batches
from tests.cli.test_assistant_commands import llmga

TINY_NET = ["--dim", "8", "--blocks", "1,1,1,1", "--refinement-blocks", "1", "--heads", "1,1,2,2", "--encoder-res",
            "1", "--prior-feats", "4", "--batch-size", "2", "--size", "32"]


def image_folder(path, n=4):
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        x = np.linspace(0, 255, 48)[None, :, None] * rng.uniform(0.5, 1, 3)
        Image.fromarray(np.broadcast_to(x, (40, 48, 3)).astype(np.uint8)).save(path / f"{i}.png")
    return path


def test_batches_mix_real_seams_and_degradations(tiny, tmp_path):
    config = SeamConfig(str(image_folder(tmp_path / "images")), size=32, batch_size=6, painter=str(tiny.sd("sd15-inpaint")),
                        painted=2, painted_share=0.5, degradation="world", seed=1)
    batch = next(batches(config, tmp_path, stream="a"))
    assert batch["lq"].shape == batch["gt"].shape == (6, 3, 32, 32) and batch["mask"].shape == (6, 1, 32, 32)
    assert ((batch["mask"] == 0) | (batch["mask"] == 1)).all() and (batch["mask"].flatten(1).sum(1) > 0).all()
    assert sorted(p.name for p in (tmp_path / "painted").iterdir()) == [
        "000000-mask.png", "000000-painted.png", "000001-mask.png", "000001-painted.png"]
    again = next(batches(config, tmp_path, stream="a"))
    assert torch.equal(batch["lq"], again["lq"])
    assert not torch.equal(batch["lq"], next(batches(config, tmp_path, stream="b"))["lq"])


def test_train_restore_runs_the_three_stages_and_resumes(tmp_path):
    images = image_folder(tmp_path / "images")
    out = tmp_path / "run"
    args = ["train", "restore", "--images", images, "--out", out, *TINY_NET, "--stage1-steps", "2",
            "--stage2-steps", "3", "--encoder-steps", "1", "--gan-steps", "2", "--save-every", "2"]
    run = llmga(*args)
    assert run.returncode == 0, run.stderr
    for stage in ("stage1", "stage2", "gan"):
        assert (out / stage / "final.safetensors").is_file() and list((out / stage / "logs").rglob("events.*"))
    assert sorted(p.name for p in (out / "gan" / "checkpoints").iterdir()) == ["step-0000002"]
    restorer = Restorer.load(out / "final")
    assert restorer.config.dim == 8 and restorer.config.reference
    weights = (out / "final" / "model.safetensors").read_bytes()
    again = llmga(*args)  # finished: every stage loads, nothing trains
    assert again.returncode == 0 and "resumed" not in again.stdout
    assert (out / "final" / "model.safetensors").read_bytes() == weights
    diffir = llmga(*args[:4], "--out", tmp_path / "diffir", "--no-reference", "--no-colour", "--gan-steps", "0",
                   *args[6:-4], "--save-every", "5")
    assert diffir.returncode == 0, diffir.stderr
    assert not Restorer.load(tmp_path / "diffir" / "final").config.reference
