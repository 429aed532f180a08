"""The tiny random stacks round-trip through the real loading code, offline, and run."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import pytest
import torch
from PIL import Image

from llmga.testing import (
    build_tiny_causal_lm,
    build_tiny_clip_tokenizer,
    build_tiny_llava,
    build_tiny_sd,
)

torch.set_num_threads(1)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of all safetensors files under ``path``, keyed by file and name."""
    from safetensors.torch import load_file

    files = sorted(path.rglob("*.safetensors"))
    assert files, f"no safetensors under {path}"
    return {
        f"{file.relative_to(path)}:{name}": tensor
        for file in files
        for name, tensor in load_file(file).items()
    }


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def offline():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def sd15(tmp_path_factory, offline) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("sd15"), variant="sd15", seed=0)


@pytest.fixture(scope="module")
def causal_lm(tmp_path_factory, offline) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("lm"), seed=0)


# --------------------------------------------------------------------------
# CLIP tokenizer


def test_clip_tokenizer_round_trips(tmp_path, offline):
    from transformers import AutoTokenizer

    build_tiny_clip_tokenizer(tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert type(tok).__name__.startswith("CLIPTokenizer")
    assert len(tok) > 514
    assert tok.model_max_length == 77
    assert tok.convert_ids_to_tokens([tok.bos_token_id, tok.eos_token_id]) == [
        "<|startoftext|>",
        "<|endoftext|>",
    ]
    assert tok.eos_token_id == len(tok) - 1
    assert tok.pad_token_id == tok.eos_token_id

    ids = tok("a red cat").input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert len(ids) == 5  # one token per known word

    sentence = "a photo of a cute dog sitting in a garden at sunset, oil painting"
    assert len(tok(sentence).input_ids) < len(sentence) / 3
    # Unknown words fall back to pieces, and decode back.
    zyx = tok("zyxwv").input_ids[1:-1]
    assert len(zyx) > 1
    assert tok.decode(zyx).strip() == "zyxwv"

    padded = tok("a red cat", padding="max_length", truncation=True, return_tensors="pt")
    assert padded.input_ids.shape == (1, 77)


# --------------------------------------------------------------------------
# Stable Diffusion


def _run_sd(pipe, inpaint: bool) -> Image.Image:
    pipe.set_progress_bar_config(disable=True)
    kwargs = {}
    if inpaint:
        mask = Image.new("L", (64, 64), 0)
        mask.paste(255, (16, 16, 48, 48))
        kwargs = dict(image=Image.new("RGB", (64, 64), "blue"), mask_image=mask)
    return pipe(
        "a red cat",
        num_inference_steps=2,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    ).images[0]


# EulerDiscreteScheduler calls np.array(tensor, copy=False) on torch 2.13: a numpy DeprecationWarning.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
@pytest.mark.parametrize("variant", ["sd15", "sd15-inpaint", "sd2", "sdxl"])
def test_sd_round_trips_and_runs(variant, sd15, tmp_path, offline):
    from diffusers import AutoPipelineForInpainting, AutoPipelineForText2Image

    path = sd15 if variant == "sd15" else build_tiny_sd(tmp_path / variant, variant=variant)
    assert (path / "model_index.json").is_file()
    assert list((path / "unet").glob("*.safetensors"))
    inpaint = variant == "sd15-inpaint"
    auto = AutoPipelineForInpainting if inpaint else AutoPipelineForText2Image
    pipe = auto.from_pretrained(path, local_files_only=True)
    assert len(pipe.tokenizer) > 514 and pipe.tokenizer.model_max_length == 77
    assert pipe.unet.config.in_channels == (9 if inpaint else 4)
    expected = {
        "sd15": "StableDiffusionPipeline",
        "sd15-inpaint": "StableDiffusionInpaintPipeline",
        "sd2": "StableDiffusionPipeline",
        "sdxl": "StableDiffusionXLPipeline",
    }[variant]
    assert type(pipe).__name__ == expected
    if variant in ("sd2", "sdxl"):  # SD 2.x and SDXL's second tokenizer pad with "!"
        last = pipe.tokenizer_2 if variant == "sdxl" else pipe.tokenizer
        assert last.pad_token == "!" and last.pad_token_id != last.eos_token_id
    if variant == "sd2":
        assert pipe.scheduler.config.prediction_type == "v_prediction"

    image = _run_sd(pipe, inpaint)
    assert isinstance(image, Image.Image) and image.size == (64, 64)


def test_sd_same_seed_same_weights(sd15, tmp_path):
    assert _same_weights(sd15, build_tiny_sd(tmp_path / "again", seed=0))
    assert not _same_weights(sd15, build_tiny_sd(tmp_path / "other", seed=1))


def test_sd_rejects_unknown_variant(tmp_path):
    with pytest.raises(ValueError, match="variant"):
        build_tiny_sd(tmp_path, variant="sd3")


# --------------------------------------------------------------------------
# chat models


def test_llava_round_trips_and_generates(tmp_path, offline):
    from transformers import AutoProcessor, LlavaForConditionalGeneration
    from transformers.models.clip import CLIPImageProcessorPil

    path = build_tiny_llava(tmp_path / "llava")
    processor = AutoProcessor.from_pretrained(path)
    model = LlavaForConditionalGeneration.from_pretrained(path)
    assert isinstance(processor.image_processor, CLIPImageProcessorPil)
    assert list(path.glob("*.safetensors"))

    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Make it night."}]},
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<image>Make it night.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    inputs = processor(text=text, images=[Image.new("RGB", (40, 48), "red")], return_tensors="pt")
    image_token_id = model.config.image_token_index
    assert processor.tokenizer.convert_ids_to_tokens(image_token_id) == "<image>"
    assert (inputs.input_ids == image_token_id).sum().item() == 16  # (32 / 8) ** 2 patches
    assert inputs.pixel_values.shape == (1, 3, 32, 32)

    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > inputs.input_ids.shape[1]


def test_causal_lm_round_trips_and_generates(causal_lm, offline):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(causal_lm)
    model = AutoModelForCausalLM.from_pretrained(causal_lm)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert list(causal_lm.glob("*.safetensors"))
    assert tok.eos_token == tok.pad_token == "<|im_end|>"
    assert model.config.eos_token_id == tok.eos_token_id

    text = tok.apply_chat_template(
        [{"role": "user", "content": "Draw a red fox."}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nDraw a red fox.<|im_end|>\n<|im_start|>assistant\n"
    ids = tok(text, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids.input_ids.shape[1]
    assert isinstance(tok.decode(out[0]), str)


def test_chat_builders_deterministic(causal_lm, tmp_path):
    assert _same_weights(causal_lm, build_tiny_causal_lm(tmp_path / "again", seed=0))
    assert not _same_weights(causal_lm, build_tiny_causal_lm(tmp_path / "other", seed=1))
    a, b = build_tiny_llava(tmp_path / "a", seed=3), build_tiny_llava(tmp_path / "b", seed=3)
    assert _same_weights(a, b)
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()
