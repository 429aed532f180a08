"""The published configurations of the Stable Diffusion families, written out, so nothing is fetched for them.

diffusers' ``from_single_file`` needs a diffusers-format config folder for the
pipeline it builds (it downloads one from a hub when not given a local path).
:func:`write_pipeline_config` writes that folder for a family from the values
below (the public ``config.json`` files of stable-diffusion-v1-5,
stable-diffusion-inpainting, stable-diffusion-2-1, stable-diffusion-xl-base-1.0
and stable-diffusion-xl-1.0-inpainting-0.1), with CLIP's real tokenizer built
from the BPE merges shipped in ``clip_bpe/``. The full-size architecture checks
build their random-weight models from the same values.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..clip_tokenizer import CLIP_EOS, write_openai_clip_tokenizer

_SD_DOWN = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
_SD_UP = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
_UNET_COMMON = dict(act_fn="silu", center_input_sample=False, downsample_padding=1, flip_sin_to_cos=True, freq_shift=0,
                    layers_per_block=2, mid_block_scale_factor=1, norm_eps=1e-05, norm_num_groups=32, out_channels=4)
UNETS: dict[str, dict[str, Any]] = {
    "sd15": dict(_UNET_COMMON, attention_head_dim=8, block_out_channels=[320, 640, 1280, 1280], cross_attention_dim=768,
                 down_block_types=_SD_DOWN, up_block_types=_SD_UP, in_channels=4, sample_size=64),
    "sd21": dict(_UNET_COMMON, attention_head_dim=[5, 10, 20, 20], block_out_channels=[320, 640, 1280, 1280],
                 cross_attention_dim=1024, down_block_types=_SD_DOWN, up_block_types=_SD_UP, in_channels=4,
                 sample_size=96, use_linear_projection=True, upcast_attention=True),
    "sdxl": dict(_UNET_COMMON, addition_embed_type="text_time", addition_embed_type_num_heads=64,
                 addition_time_embed_dim=256, attention_head_dim=[5, 10, 20], block_out_channels=[320, 640, 1280],
                 cross_attention_dim=2048, down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                 up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], in_channels=4,
                 projection_class_embeddings_input_dim=2816, sample_size=128, transformer_layers_per_block=[1, 2, 10],
                 use_linear_projection=True),
}
UNETS["sd15-inpaint"] = dict(UNETS["sd15"], in_channels=9)
UNETS["sdxl-inpaint"] = dict(UNETS["sdxl"], in_channels=9)

_VAE = dict(act_fn="silu", block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4, in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
            norm_num_groups=32)
VAES = {"sd": dict(_VAE, sample_size=512, scaling_factor=0.18215),
        "sdxl": dict(_VAE, sample_size=1024, scaling_factor=0.13025, force_upcast=True)}

_TEXT = dict(vocab_size=49408, max_position_embeddings=77, layer_norm_eps=1e-05, bos_token_id=49406, eos_token_id=49407,
             pad_token_id=1, model_type="clip_text_model")
TEXT_ENCODERS = {  # CLIP ViT-L/14 (SD 1.x, SDXL's first), OpenCLIP ViT-H/14 (SD 2.x), OpenCLIP ViT-bigG/14 (SDXL's second)
    "clip-l": dict(_TEXT, hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
                   projection_dim=768, hidden_act="quick_gelu"),
    "openclip-h": dict(_TEXT, hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23,
                       projection_dim=512, hidden_act="gelu"),
    "openclip-bigg": dict(_TEXT, hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32,
                          projection_dim=1280, hidden_act="gelu"),
}

_BETAS = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
              steps_offset=1, set_alpha_to_one=False, clip_sample=False)
SCHEDULERS = {
    "sd": ("PNDMScheduler", dict(_BETAS, skip_prk_steps=True, prediction_type="epsilon")),
    "sd21": ("DDIMScheduler", dict(_BETAS, prediction_type="v_prediction")),
    "sdxl": ("EulerDiscreteScheduler", dict(_BETAS, prediction_type="epsilon", timestep_spacing="leading",
                                            interpolation_type="linear")),
}

CONTROLNET_SD15 = dict(
    {k: v for k, v in UNETS["sd15"].items() if k not in ("up_block_types", "out_channels", "sample_size",
                                                          "center_input_sample")},
    conditioning_embedding_out_channels=[16, 32, 96, 256], controlnet_conditioning_channel_order="rgb",
)


@dataclass(frozen=True)
class Family:
    """One Stable Diffusion family: its pipeline class and the configs of its parts."""

    pipeline: str
    unet: str
    vae: str
    text: tuple[str, ...]
    scheduler: str
    extra: tuple[tuple[str, Any], ...] = ()


FAMILIES: dict[str, Family] = {
    "sd15": Family("StableDiffusionPipeline", "sd15", "sd", ("clip-l",), "sd", (("requires_safety_checker", False),)),
    "sd15-inpaint": Family("StableDiffusionInpaintPipeline", "sd15-inpaint", "sd", ("clip-l",), "sd",
                           (("requires_safety_checker", False),)),
    "sd21": Family("StableDiffusionPipeline", "sd21", "sd", ("openclip-h",), "sd21", (("requires_safety_checker", False),)),
    "sdxl": Family("StableDiffusionXLPipeline", "sdxl", "sdxl", ("clip-l", "openclip-bigg"), "sdxl",
                   (("force_zeros_for_empty_prompt", True),)),
    "sdxl-inpaint": Family("StableDiffusionXLInpaintPipeline", "sdxl-inpaint", "sdxl", ("clip-l", "openclip-bigg"),
                           "sdxl", (("force_zeros_for_empty_prompt", True), ("requires_aesthetics_score", False))),
}


def clip_merges() -> list[str]:
    """OpenAI CLIP's BPE merges (shipped with llmga, from CLIP's MIT-licensed vocabulary file)."""
    return gzip.open(Path(__file__).parent / "clip_bpe" / "merges.txt.gz", "rt", encoding="utf-8").read().split("\n")


def write_pipeline_config(name: str, out: Path) -> Path:
    """Write a diffusers pipeline folder without weights for family ``name`` (configs and tokenizers) into ``out``."""
    family = FAMILIES[name]
    out.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"_class_name": family.pipeline, "_diffusers_version": "0.30.0", **dict(family.extra)}
    parts = {"unet": ("diffusers", "UNet2DConditionModel", {"_class_name": "UNet2DConditionModel", **UNETS[family.unet]}),
             "vae": ("diffusers", "AutoencoderKL", {"_class_name": "AutoencoderKL", **VAES[family.vae]})}
    scheduler_class, scheduler = SCHEDULERS[family.scheduler]
    _json(out / "scheduler" / "scheduler_config.json", {"_class_name": scheduler_class, **scheduler})
    index["scheduler"] = ["diffusers", scheduler_class]
    merges = clip_merges()
    for i, text in enumerate(family.text):
        suffix = "" if i == 0 else f"_{i + 1}"
        with_projection = len(family.text) > 1 and i > 0
        arch = "CLIPTextModelWithProjection" if with_projection else "CLIPTextModel"
        parts[f"text_encoder{suffix}"] = ("transformers", arch, {"architectures": [arch], **TEXT_ENCODERS[text]})
        # SD 2.x and SDXL's OpenCLIP tokenizers pad with "!"
        write_openai_clip_tokenizer(out / f"tokenizer{suffix}", merges, "!" if text.startswith("openclip") else CLIP_EOS)
        index[f"tokenizer{suffix}"] = ["transformers", "CLIPTokenizer"]
    for part, (library, cls, config) in parts.items():
        _json(out / part / "config.json", config)
        index[part] = [library, cls]
    if family.pipeline.startswith("StableDiffusionPipeline") or family.pipeline == "StableDiffusionInpaintPipeline":
        index.update(safety_checker=[None, None], feature_extractor=[None, None])
    _json(out / "model_index.json", index)
    return out


def _json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
