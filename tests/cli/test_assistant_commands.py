"""The ``llmga`` command, run as a user runs it: its entry point, arguments, exit codes, stdout and stderr.

The commands run in this process (through the same ``main`` the ``llmga``
script calls); ``tests/shipped/test_world_default.py`` runs one as a separate process.
"""

import shutil
import warnings
from types import SimpleNamespace

import pytest
from PIL import Image
from typer.testing import CliRunner

from llmga.assistant import REFINE_REQUEST
from llmga.cli import app, main
from llmga.images import read_metadata
from tests.support import train_to_answer

SMALL = ["--steps", "2", "--width", "64", "--height", "64"]


def llmga(*args, stdin=None):
    """Run ``llmga ARGS`` as the script does; its exit code and what it wrote to stdout and stderr."""
    with warnings.catch_warnings(), CliRunner().isolation(input=stdin) as (out, err, _):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
        return SimpleNamespace(returncode=code, stdout=out.getvalue().decode(), stderr=err.getvalue().decode())


@pytest.fixture(scope="module")
def models(tiny):
    return {"sd": tiny.sd(), "lm": tiny.causal_lm(), "llava": tiny.llava()}


def saved_paths(stdout):
    return [line.split("image saved: ", 1)[1] for line in stdout.splitlines() if line.startswith("image saved: ")]


def test_generate_no_refine_paints_and_saves_with_metadata(models, tmp_path):
    run = llmga("generate", "a red fox in the snow", "--no-refine", "--painter", str(models["sd"]),
                "--out", str(tmp_path), "--seed", "5", "--num-images", "2", *SMALL)
    assert run.returncode == 0, run.stderr
    assert "[generation prompt] a red fox in the snow" in run.stdout
    paths = saved_paths(run.stdout)
    assert len(paths) == 2
    meta = read_metadata(paths[0])
    assert meta["prompt"] == "a red fox in the snow" and meta["seed"] == 5 and meta["steps"] == 2
    assert Image.open(paths[1]).size == (64, 64)


def test_generate_with_a_brain_shows_its_prompt_and_paints(models, tmp_path):
    """A tiny LM taught one exchange: its own prompt (not the user's words) is shown, painted and saved."""
    lm = shutil.copytree(models["lm"], tmp_path / "lm")
    train_to_answer(lm, REFINE_REQUEST.format(text="a red fox"), "<gen_img>a red fox in the snow</gen_img>")
    run = llmga("generate", "a red fox", "--brain", str(lm), "--painter", str(models["sd"]),
                "--out", str(tmp_path), "--max-new-tokens", "30", "--temperature", "0", *SMALL)
    assert run.returncode == 0, run.stderr
    assert "brain:" in run.stdout and "painter:" in run.stdout
    assert "[generation prompt] a red fox in the snow\n" in run.stdout and "note:" not in run.stdout
    paths = saved_paths(run.stdout)
    assert len(paths) == 1 and read_metadata(paths[0])["prompt"] == "a red fox in the snow"


def test_chat_session_streams_attaches_and_survives_errors(models, tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 40), "green").save(photo)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    script = "\n".join([f"/image {broken}", f"/image {photo}", "what is this?", "/undo", "hello", "/quit"]) + "\n"
    run = llmga("chat", "--brain", str(models["llava"]), "--painter", "none", "--max-new-tokens", "6",
                stdin=script)
    assert run.returncode == 0, run.stderr
    assert "not an image" in run.stderr  # the broken file is reported, the session goes on
    assert "image set for your next message" in run.stdout and "[task: answer]" in run.stdout
    assert run.stdout.count("assistant> ") == 2
    assert "last exchange taken back" in run.stdout


def test_chat_with_a_text_only_brain_refuses_images_and_continues(models, tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(photo)
    run = llmga("chat", "--brain", str(models["lm"]), "--max-new-tokens", "4",
                stdin=f"/image {photo}\nwhat is this?\nhello\n")
    assert run.returncode == 0
    assert "text-only" in run.stderr
    assert run.stdout.count("assistant> ") == 2  # the refused turn, then one that works


def test_missing_models_fail_before_any_model_loads_naming_them(tmp_path, monkeypatch):
    import llmga.brain
    from llmga.painter.suite import PainterSuite

    def loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the missing one was reported")

    monkeypatch.setattr(llmga.brain, "load_brain", loading)
    monkeypatch.setattr(PainterSuite, "load", loading)
    runner = CliRunner()
    for args, expected in [
        (["generate", "x", "--painter", str(tmp_path / "no-sd")], "no-sd does not exist"),
        (["generate", "x", "--brain", str(tmp_path / "no-lm")], "no-lm does not exist"),
        (["generate", "x", "--brain", str(tmp_path / "m.gguf")], "m.gguf does not exist"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code != 0 and expected in str(result.exception)


def test_bad_settings_and_profiles_are_clear_errors(models, tmp_path):
    run = llmga("generate", "x", "--no-refine", "--painter", str(models["sd"]), "--steps", "0")
    assert run.returncode == 2 and "steps must be >= 1" in run.stderr
    run = llmga("generate", "x", "--profile", "nope", "--config", str(tmp_path / "none.toml"))
    assert run.returncode == 2 and "does not exist" in run.stderr
    assert "Traceback" not in run.stderr


def test_profile_chooses_the_models(models, tmp_path):
    cfg = tmp_path / "llmga.toml"
    cfg.write_text(f'[profiles.tiny]\npainter = "{models["sd"]}"\nout_dir = "{tmp_path / "out"}"\n'
                   "[profiles.tiny.paint]\nsteps = 2\nwidth = 64\nheight = 64\n")
    run = llmga("generate", "a cat", "--no-refine", "--config", str(cfg), "--profile", "tiny")
    assert run.returncode == 0, run.stderr
    assert saved_paths(run.stdout)[0].startswith(str(tmp_path / "out"))


def test_every_failure_is_one_line_and_a_non_zero_exit_and_nothing_painted_is_lost(models, tmp_path):
    """The hostile corpus of the command line: each case fails with one ``error:`` line, no traceback."""
    photo, small_mask, garbage = tmp_path / "photo.png", tmp_path / "mask.png", tmp_path / "garbage.gguf"
    Image.new("RGB", (64, 64), "green").save(photo)
    Image.new("L", (32, 32), 255).save(small_mask)
    garbage.write_bytes(b"\x00" * 1000)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    sd, out = str(models["sd"]), str(tmp_path / "out")
    cases = [
        (["inpaint", photo, small_mask, "a fountain", "--painter", sd], 2, "the mask is 32x32 but the image is 64x64"),
        (["generate", "word " * 10_000, "--no-refine", "--painter", sd, "--out", out, *SMALL], 1, "limit is"),
        (["expand", "a panorama", "--size", "0x0", "--painter", sd], 2, "8 to 8192 pixels a side, got 0x0"),
        (["outpaint", photo, "a wide beach", "--painter", sd], 2, "outpainting needs a size"),
        (["generate", "x", "--no-refine", "--painter", sd, "--width", "800000"], 2, "width: 800000 is over the limit"),
        (["generate", "x", "--brain", garbage], 2, "is not a GGUF file"),
        (["generate", "x", "--no-refine", "--painter", sd, "--out", blocker / "out"], 2, "cannot save images in"),
        (["generate", "x", "--no-refine", "--painter", sd, "--seed", str(10**30)], 2, "seed must be between 0 and"),
        (["serve", "--port", "99999"], 2, "port must be between 0 and 65535"),
        (["generate", "x", "--steps", "many"], 2, "Invalid value for '--steps'"),
        (["generate"], 2, "Missing argument 'TEXT'"),
        (["generate", "  ", "--no-refine", "--painter", sd, "--out", out, *SMALL], 2, "the message is empty"),
        (["generate", "", "--painter", tmp_path / "no-painter"], 2, "the message is empty"),  # before any model
    ]
    for args, code, message in cases:
        run = llmga(*args)
        errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]  # (libraries may warn)
        assert (run.returncode, len(errors)) == (code, 1), (args[:2], run.returncode, run.stderr)
        assert message in errors[0] and "Traceback" not in run.stderr
        assert saved_paths(run.stdout) == []
    assert not (blocker.parent / "out").exists() or not list((blocker.parent / "out").iterdir())


@pytest.mark.parametrize(("light", "order"), [(True, ["painter imports", "brain"]), (False, ["brain", "painter imports"])])
def test_the_painters_libraries_import_beside_a_brain_only_when_it_loads_without_torch(
        models, tmp_path, monkeypatch, light, order):
    """Two threads never import torch, diffusers or transformers at once: the painter's libraries start first
    only beside a brain that needs none of them (llama.cpp, a server), else after the brain has loaded."""
    import llmga.brain as brains
    import llmga.cli.options as options

    seen = []
    monkeypatch.setattr(brains, "loads_without_torch", lambda spec, runtime=None: light)
    monkeypatch.setattr(brains, "load_brain", lambda *args, **kwargs: seen.append("brain"))
    monkeypatch.setattr(options, "_import_painter_libraries", lambda spec: seen.append("painter imports"))
    options.AssistantOptions(brain=str(models["lm"]), painter=str(models["sd"]), out=tmp_path).build()
    assert seen == order


def test_the_painter_package_s_light_modules_import_without_torch():
    import subprocess
    import sys

    code = ("import sys, llmga.painter.preload, llmga.painter.samplers; print('torch' in sys.modules); "
            "from llmga.painter import TextToImagePainter; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]
