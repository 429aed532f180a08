"""``llmga restore`` and the assistant commands' --restorer / --no-restore, run as a user runs them."""

import numpy as np
from PIL import Image

from llmga.images import read_metadata
from llmga.testing.tiny_restorer import build_tiny_restorer
from tests.cli.test_assistant_commands import llmga, saved_paths


def files(tmp_path, size=(48, 40), mask_size=None):
    rng = np.random.default_rng(0)
    original = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    painted = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    mask = Image.new("L", mask_size or size)
    mask.paste(255, (0, 0, 12, (mask_size or size)[1]))
    paths = {name: tmp_path / f"{name}.png" for name in ("original", "painted", "mask")}
    for name, image in (("original", original), ("painted", painted), ("mask", mask)):
        image.save(paths[name])
    return paths


def test_restore_writes_the_repaired_picture_with_the_kept_region_untouched(tmp_path):
    restorer = build_tiny_restorer(tmp_path / "restorer")
    paths = files(tmp_path)
    out = tmp_path / "restored.png"
    run = llmga("restore", paths["painted"], "--mask", paths["mask"], "--reference", paths["original"],
                "--restorer", restorer, "--out", out)
    assert run.returncode == 0, run.stderr
    assert saved_paths(run.stdout) == [str(out)] and "DiffRIR ×1" in run.stdout
    restored, original = np.asarray(Image.open(out)), np.asarray(Image.open(paths["original"]))
    assert np.array_equal(restored[:, 12:], original[:, 12:])
    assert read_metadata(out)["task"] == "restore"


def test_restore_refuses_a_wrong_mask_or_scale_in_one_line(tmp_path):
    restorer = build_tiny_restorer(tmp_path / "restorer")
    paths = files(tmp_path, mask_size=(30, 30))
    run = llmga("restore", paths["painted"], "--mask", paths["mask"], "--reference", paths["original"],
                "--restorer", restorer)
    assert run.returncode == 2 and "the mask is 30x30 but the image is 48x40" in run.stderr
    paths = files(tmp_path)
    run = llmga("restore", paths["painted"], "--mask", paths["mask"], "--reference", paths["original"],
                "--restorer", restorer, "--scale", "2")
    assert run.returncode == 2 and "×1 checkpoint but this restores at ×2" in run.stderr
    assert all(len(r.stderr.strip().splitlines()) == 1 for r in [run])
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    run = llmga("restore", paths["painted"], "--mask", paths["mask"], "--reference", paths["original"],
                "--restorer", tmp_path / "nowhere", "--out", blocked / "out.png")
    assert run.returncode == 2 and "cannot save images in" in run.stderr  # said before the restorer is looked for


def test_inpaint_restores_with_a_restorer_unless_told_not_to(tiny, tmp_path):
    restorer = build_tiny_restorer(tmp_path / "restorer")
    paths = files(tmp_path, size=(64, 64))
    common = ["inpaint", paths["original"], paths["mask"], "a fountain", "--no-refine", "--painter", tiny.sd(),
              "--inpaint-painter", tiny.sd("sd15-inpaint"), "--steps", "2", "--out", tmp_path / "out"]
    run = llmga(*common, "--restorer", restorer)
    assert run.returncode == 0, run.stderr
    assert "restorer" in run.stdout and read_metadata(saved_paths(run.stdout)[0])["restorer"] == str(restorer)
    run = llmga(*common, "--restorer", restorer, "--no-restore")
    assert run.returncode == 0, run.stderr
    assert "restorer" not in read_metadata(saved_paths(run.stdout)[0])
