"""The checkpoints people have, on tiny stacks: single files loaded offline, LoRAs per request, samplers and
few-step settings, a VAE swap, VAE tiling and offload."""

import json
import socket

import pytest
import torch

from llmga.errors import InvalidInputError, ModelNotFoundError
from llmga.painter.inpaint import InpaintPainter
from llmga.painter.model_configs import FAMILIES
from llmga.painter.samplers import SAMPLERS, missing_libraries, scheduler_for
from llmga.painter.single_file import config_folder, sniff_family
from llmga.painter.text_to_image import TextToImagePainter
from llmga.settings import LoraSpec, PaintSettings, RuntimeSettings
from llmga.testing.tiny_lora import build_tiny_lora
from llmga.testing.tiny_single_file import write_single_file

FAST = PaintSettings(seed=3, steps=2, width=64, height=64)


def pixels(painting):
    return painting.images[0].tobytes()


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test (HF_HUB_OFFLINE=1 is set for the whole suite)."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"something tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def sd15(tiny):
    return TextToImagePainter.load(tiny.sd(), device="cpu")


# -- single files --------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant,suffix", [("sd15", ".safetensors"), ("sdxl", ".safetensors"), ("sd15", ".ckpt")])
def test_a_single_file_paints_as_its_diffusers_folder_and_nothing_is_fetched(tiny, tmp_path, no_network, variant,
                                                                            suffix):
    folder = tiny.sd(variant)
    file = write_single_file(folder, tmp_path / f"model{suffix}")
    assert sniff_family(file) == variant
    painter = TextToImagePainter.load(file, device="cpu", runtime=RuntimeSettings(model_config=str(folder)))
    assert pixels(painter.paint("a red fox", FAST)) == pixels(TextToImagePainter.load(folder, device="cpu").paint(
        "a red fox", FAST))


def test_a_single_file_inpainting_model_is_told_apart_and_inpaints(tiny, tmp_path, no_network):
    from PIL import Image

    folder = tiny.sd("sd15-inpaint")
    file = write_single_file(folder, tmp_path / "inpaint.safetensors")
    assert sniff_family(file) == "sd15-inpaint"
    painter = InpaintPainter.load(file, device="cpu", runtime=RuntimeSettings(model_config=str(folder)))
    mask = Image.new("L", (64, 64))
    mask.paste(255, (16, 16, 48, 48))
    assert painter.pipeline.unet.config.in_channels == 9
    assert painter.paint(Image.new("RGB", (64, 64), "gray"), mask, "a cat", FAST).images[0].size == (64, 64)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_shipped_configs_are_the_published_ones_with_clips_tokenizer(family, tmp_path, monkeypatch, no_network):
    from diffusers import DiffusionPipeline
    from transformers import CLIPTokenizer

    monkeypatch.setenv("LLMGA_CACHE", str(tmp_path))
    folder = config_folder(family)
    index = DiffusionPipeline.load_config(folder)
    assert index["_class_name"] == FAMILIES[family].pipeline
    unet = json.loads((folder / "unet" / "config.json").read_text())
    assert unet["in_channels"] == (9 if "inpaint" in family else 4)
    assert unet["cross_attention_dim"] == {"sd15": 768, "sd21": 1024}.get(family.split("-")[0], 2048)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    assert len(tokenizer) == 49408
    # OpenAI CLIP's ids for this sentence (start, a, photograph, of, an, astronaut, riding, a, horse, end)
    ids = [49406, 320, 8853, 539, 550, 18376, 6765, 320, 4558, 49407]
    assert tokenizer("a photograph of an astronaut riding a horse").input_ids == ids


def test_single_files_that_are_not_sd_checkpoints_are_named(tiny, tmp_path):
    from safetensors.torch import save_file

    lora = build_tiny_lora(tiny.sd(), tmp_path / "style.safetensors", kind="kohya")
    with pytest.raises(InvalidInputError, match="looks a LoRA"):
        TextToImagePainter.load(lora, device="cpu")
    save_file({"double_blocks.0.img_attn.qkv.weight": torch.zeros(2, 2)}, tmp_path / "flux.safetensors")
    with pytest.raises(InvalidInputError, match="looks a Flux model"):
        sniff_family(tmp_path / "flux.safetensors")
    file = write_single_file(tiny.sd(), tmp_path / "m.safetensors")
    with pytest.raises(ModelNotFoundError, match="has no model_index.json"):
        TextToImagePainter.load(file, device="cpu", runtime=RuntimeSettings(model_config=str(tmp_path)))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        TextToImagePainter.load(tmp_path / "missing.safetensors", device="cpu")


# -- LoRAs ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loras(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("loras")
    return {"diffusers": build_tiny_lora(tiny.sd(), root / "style", kind="diffusers", seed=1),
            "kohya": build_tiny_lora(tiny.sd(), root / "style.safetensors", kind="kohya", seed=1),
            "other": build_tiny_lora(tiny.sd(), root / "other.safetensors", kind="kohya", seed=2),
            "xl": build_tiny_lora(tiny.sd("sdxl"), root / "xl.safetensors", kind="kohya", seed=3)}


def test_a_lora_changes_the_painting_for_its_request_only(sd15, loras):
    plain = pixels(sd15.paint("a red fox", FAST))
    styled = pixels(sd15.paint("a red fox", PaintSettings(**{**vars(FAST), "loras": [LoraSpec(str(loras["kohya"]))]})))
    assert styled != plain
    assert pixels(sd15.paint("a red fox", FAST)) == plain  # the next request without it is unchanged
    weightless = PaintSettings(**{**vars(FAST), "loras": [LoraSpec(str(loras["kohya"]), 0.0)]})
    assert pixels(sd15.paint("a red fox", weightless)) == plain


def test_kohya_and_diffusers_formats_of_one_lora_paint_the_same(sd15, loras):
    kohya = sd15.paint("a red fox", PaintSettings(**{**vars(FAST), "loras": [str(loras["kohya"])]}))
    diffusers = sd15.paint("a red fox", PaintSettings(**{**vars(FAST), "loras": [str(loras["diffusers"])]}))
    torch.testing.assert_close(torch.tensor(list(kohya.images[0].tobytes()), dtype=torch.float),
                               torch.tensor(list(diffusers.images[0].tobytes()), dtype=torch.float), atol=2, rtol=0)


def test_several_loras_at_once_with_their_scales(sd15, loras):
    one = pixels(sd15.paint("a red fox", PaintSettings(**{**vars(FAST), "loras": [f"{loras['kohya']}:0.7"]})))
    both = sd15.paint("a red fox", PaintSettings(**{**vars(FAST), "loras": [f"{loras['kohya']}:0.7",
                                                                           f"{loras['other']}:0.5"]}))
    assert pixels(both) not in (one, pixels(sd15.paint("a red fox", FAST)))
    assert both.metadata()["loras"] == [[str(loras["kohya"]), 0.7], [str(loras["other"]), 0.5]]


def test_a_lora_for_another_base_is_refused(sd15, loras, tmp_path):
    with pytest.raises(InvalidInputError, match="LoRA .* was made for a 80-wide base, but the painter is 32-wide"):
        sd15.paint("a fox", PaintSettings(**{**vars(FAST), "loras": [str(loras["xl"])]}))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        sd15.paint("a fox", PaintSettings(**{**vars(FAST), "loras": [str(tmp_path / "nope.safetensors")]}))


# -- samplers and few-step settings -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_builds_from_the_painters_schedule(sd15, name):
    if missing_libraries(name):  # LMS without scipy: a clear refusal before anything runs
        with pytest.raises(InvalidInputError, match=f"the {name} sampler needs .*: pip install "):
            scheduler_for(PaintSettings(sampler=name), sd15.pipeline.scheduler)
        return
    scheduler = scheduler_for(PaintSettings(sampler=name), sd15.pipeline.scheduler)
    assert type(scheduler).__name__ == SAMPLERS[name][0]
    assert scheduler.config.beta_schedule == sd15.pipeline.scheduler.config.beta_schedule


def test_a_sampler_paints_differently_and_the_painters_own_comes_back(sd15):
    own = sd15.pipeline.scheduler
    base = pixels(sd15.paint("a red fox", FAST))
    karras = PaintSettings(**{**vars(FAST), "sampler": "dpm++_2m", "karras": True})
    assert pixels(sd15.paint("a red fox", karras)) != base
    assert sd15.pipeline.scheduler is own and pixels(sd15.paint("a red fox", FAST)) == base


def test_karras_and_spacing_reach_the_scheduler():
    from diffusers import DDIMScheduler

    own = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1)
    trailing = scheduler_for(PaintSettings(timestep_spacing="trailing"), own)
    trailing.set_timesteps(4)
    assert trailing.timesteps.tolist() == [999, 749, 499, 249]
    assert scheduler_for(PaintSettings(sampler="euler", karras=True), own).config.use_karras_sigmas
    with pytest.raises(InvalidInputError, match="the ddim sampler has no Karras sigmas"):
        scheduler_for(PaintSettings(sampler="ddim", karras=True), own)
    with pytest.raises(InvalidInputError, match="unknown sampler 'k_euler'"):
        scheduler_for(PaintSettings(sampler="k_euler"), own)


@pytest.mark.parametrize("preset,steps,guidance,sampler", [("lcm", 4, 1.0, "lcm"), ("turbo", 1, 0.0, "euler_a"),
                                                           ("lightning", 4, 0.0, "euler"), ("hyper", 8, 0.0, "ddim")])
def test_few_step_presets_carry_their_models_settings(sd15, preset, steps, guidance, sampler):
    settings = PaintSettings(seed=1, width=64, height=64).with_preset(preset)
    assert (settings.steps, settings.guidance, settings.sampler, settings.preset) == (steps, guidance, sampler, preset)
    painting = sd15.paint("a red fox", settings)
    assert painting.metadata()["preset"] == preset and painting.images[0].size == (64, 64)
    with pytest.raises(InvalidInputError, match="unknown few-step preset 'fastest'"):
        settings.with_preset("fastest")


# -- runtime: VAE swap, tiling, offload ---------------------------------------------------------------------


def test_a_vae_swap_tiling_and_a_clear_offload_error(tiny, tmp_path):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(tiny.sd() / "vae")
    with torch.no_grad():
        for p in vae.decoder.conv_out.parameters():
            p.mul_(-1)
    vae.save_pretrained(tmp_path / "vae")
    swapped = TextToImagePainter.load(tiny.sd(), device="cpu", runtime=RuntimeSettings(vae=str(tmp_path / "vae"),
                                                                                     vae_tiling=True))
    assert swapped.pipeline.vae.use_tiling
    torch.testing.assert_close(swapped.pipeline.vae.decoder.conv_out.weight, vae.decoder.conv_out.weight)
    with pytest.raises(InvalidInputError, match="--offload model .* needs a CUDA device"):
        TextToImagePainter.load(tiny.sd(), device="cpu", runtime=RuntimeSettings(offload="model"))
    with pytest.raises(InvalidInputError, match="offload must be one of"):
        RuntimeSettings(offload="disk")
