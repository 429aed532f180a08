"""The checkpoint, sampler, LoRA, few-step, ControlNet and device options in the CLI and in profiles."""

import pytest

from llmga.images import read_metadata
from llmga.profiles import load_profile
from llmga.settings import LoraSpec
from llmga.testing.tiny_controlnet import build_tiny_controlnet
from llmga.testing.tiny_lora import build_tiny_lora
from llmga.testing.tiny_single_file import write_single_file
from tests.cli.test_assistant_commands import SMALL, llmga, saved_paths


def test_a_single_file_painter_with_a_lora_a_sampler_and_few_step_settings(tiny, tmp_path):
    file = write_single_file(tiny.sd(), tmp_path / "model.safetensors")
    lora = build_tiny_lora(tiny.sd(), tmp_path / "style.safetensors", kind="kohya")
    run = llmga("generate", "a red fox", "--no-refine", "--painter", file, "--model-config", tiny.sd(),
                "--fast", "turbo", "--lora", f"{lora}:0.6", "--sampler", "dpm++_2m", "--karras", "--steps", "2",
                "--vae-tiling", "--painter-device", "cpu", "--dtype", "bfloat16", "--out", tmp_path / "out", "--width", "64", "--height", "64")
    assert run.returncode == 0, run.stderr
    meta = read_metadata(saved_paths(run.stdout)[0])
    assert (meta["preset"], meta["sampler"], meta["karras"], meta["steps"], meta["guidance"]) == (
        "turbo", "dpm++_2m", True, 2, 0.0)
    assert meta["timestep_spacing"] == "trailing" and meta["loras"] == [[str(lora), 0.6]]


def test_several_controlnets_from_repeated_flags(tiny, tmp_path):
    tile = build_tiny_controlnet(tmp_path / "sd15-controlnet-tile", seed=4)
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.new("RGB", (64, 64), "gray").save(photo)
    run = llmga("controlnet", photo, "a castle", "--from-photo", "--no-refine", "--painter", tiny.sd(),
                "--controlnet", tiny.controlnet(), "--controlnet", tile, "--out", tmp_path / "out", *SMALL)
    assert run.returncode == 0, run.stderr
    assert read_metadata(saved_paths(run.stdout)[0])["control_type"] == "canny+tile"


@pytest.mark.parametrize("args,message", [
    (["--sampler", "k_lms"], "unknown sampler 'k_lms'"),
    (["--sampler", "ddim", "--karras"], "the ddim sampler has no Karras sigmas"),
    (["--fast", "warp"], "unknown few-step preset 'warp'"),
    (["--offload", "disk"], "offload must be one of"),
    (["--timestep-spacing", "sideways"], "timestep_spacing must be one of"),
])
def test_bad_options_are_one_line_errors(tiny, args, message):
    run = llmga("generate", "x", "--no-refine", "--painter", tiny.sd(), *args)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr


def test_profiles_carry_presets_loras_samplers_and_runtime(tmp_path):
    cfg = tmp_path / "llmga.toml"
    cfg.write_text('[profiles.xl]\npainter = "/models/sdxl.safetensors"\ncontrolnet = ["/a", "/b"]\n'
                   '[profiles.xl.paint]\npreset = "lightning"\nsteps = 8\nloras = ["/l/style.safetensors:0.8"]\n'
                   'karras = true\n[profiles.xl.runtime]\nbrain_quantize = "4bit"\noffload = "model"\n'
                   'painter_device = "cuda:1"\n')
    prof = load_profile("xl", cfg)
    assert (prof.paint.preset, prof.paint.steps, prof.paint.guidance, prof.paint.sampler) == ("lightning", 8, 0.0,
                                                                                              "euler")
    assert prof.paint.loras == (LoraSpec("/l/style.safetensors", 0.8),) and prof.paint.karras
    assert (prof.runtime.brain_quantize, prof.runtime.offload, prof.runtime.painter_device) == ("4bit", "model",
                                                                                                "cuda:1")
    assert prof.controlnet == ["/a", "/b"]
