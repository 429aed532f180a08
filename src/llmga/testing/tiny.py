"""Tiny random-weight model stacks, written in the real on-disk formats.

Each builder makes a complete, working model directory from configs alone (no
download), seeded for determinism, in the same format a real checkpoint has:
safetensors weights, ``config.json``/``model_index.json``, tokenizer and
processor files. Tests (and users) load them back through the ordinary
``from_pretrained`` code, so they exercise formats, shapes and plumbing without
real weights. The outputs are noise: the models are random.

- :func:`build_tiny_clip_tokenizer`: a real ``CLIPTokenizer`` with a small BPE
  vocabulary that knows a few hundred common English words.
- :func:`build_tiny_sd`: Stable Diffusion 1.5 (text-to-image or inpainting) or
  SDXL pipeline directories.
- :func:`build_tiny_llava`: a LLaVA-format multimodal model with its processor.
- :func:`build_tiny_causal_lm`: a text-only Llama-format chat model.
- :func:`build_tiny_clip_vision`: a CLIP vision tower shaped like the miniature world's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import torch

from ..clip_tokenizer import CLIP_EOS as _CLIP_EOS
from ..clip_tokenizer import write_clip_tokenizer
from ..conversation import SYSTEM_PROMPT

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

__all__ = [
    "CHAT_TEMPLATE",
    "SD_VARIANTS",
    "build_tiny_causal_lm",
    "build_tiny_clip_tokenizer",
    "build_tiny_clip_vision",
    "build_tiny_llava",
    "build_tiny_sd",
]

PathLike = str | os.PathLike[str]
SDVariant = Literal["sd15", "sd15-inpaint", "sd2", "sdxl", "sdxl-inpaint"]
SD_VARIANTS: tuple[str, ...] = get_args(SDVariant)

# Common English and image-prompt words; each gets its own token in the tiny
# CLIP vocabulary, other words fall back to smaller pieces and characters.
_CLIP_WORDS = ["a", "an", "the", "of", "in", "on", "at", "to", "and", "or", "with", "without", "from", "by", "for", "is", "are", "it", "this", "that", "make", "show", "draw", "paint", "generate", "picture", "image", "photo", "photograph", "painting", "portrait", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray", "gold", "silver", "cat", "dog", "fox", "bird", "horse", "cow", "fish", "lion", "tiger", "bear", "rabbit", "owl", "dragon", "robot", "person", "man", "woman", "girl", "boy", "child", "people", "car", "house", "tree", "flower", "forest", "mountain", "river", "sea", "ocean", "lake", "beach", "sky", "cloud", "sun", "moon", "star", "snow", "rain", "city", "street", "road", "castle", "garden", "field", "desert", "night", "day", "morning", "evening", "sunset", "sunrise", "light", "dark", "shadow", "big", "small", "tall", "little", "old", "young", "new", "happy", "sad", "cute", "beautiful", "detailed", "high", "quality", "realistic", "style", "art", "digital", "oil", "watercolor", "sketch", "cartoon", "anime", "cinematic", "lighting", "soft", "bright", "background", "foreground", "close", "up", "wearing", "hat", "sitting", "standing", "running", "flying", "under", "over", "near"]

# Small corpus the chat models' byte-level BPE is trained on.
_CHAT_CORPUS = [
    "You are a helpful assistant that generates and edits images.",
    "Please draw a red fox in the snow.",
    "Sure! <gen_img>a red fox in the snow, soft morning light</gen_img>",
    "Make it night. Sure! <gen_img>a red fox in the snow at night</gen_img>",
    "Describe this image. It shows a cat sitting on a chair.",
    "What is the capital of France? The capital of France is Paris.",
    "Generate a picture of a castle on a mountain at sunset.",
    "Paint a blue bird flying over the sea, watercolor style.",
    "Hello! How can I help you today?",
    "a photo of a dog, high quality, detailed, cinematic lighting",
    "user assistant system",
    SYSTEM_PROMPT,  # so the tiny tokenizer writes the system prompt in few tokens
] * 4

# ChatML; the content is a string or a list of {"type": "image"} and
# {"type": "text", "text": ...} items. Templates render with trim_blocks, so
# newlines are written as {{ '\n' }} expressions.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}"
    "{{- message['content'] -}}"
    "{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{- '<image>' -}}"
    "{%- elif item['type'] == 'text' -%}{{- item['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>' + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant' + '\\n' -}}{%- endif -%}"
)

_IM_START, _IM_END, _IMAGE = "<|im_start|>", "<|im_end|>", "<image>"

# Vision tower geometry: 32 px images in 8 px patches = 16 image tokens (the
# CLS token is dropped by the "default" feature-select strategy).
_IMAGE_SIZE, _PATCH_SIZE = 32, 8


# --------------------------------------------------------------------------
# shared helpers


def _as_dir(path: PathLike) -> Path:
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch for model initialisation without disturbing the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _train_byte_bpe(vocab_size: int = 400) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on the built-in chat corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[_IM_END, _IM_START, _IMAGE],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CHAT_CORPUS, trainer)
    return tok


def _chat_tokenizer() -> Any:
    """A fast ChatML tokenizer: eos and pad ``<|im_end|>``, image token ``<image>``."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=_train_byte_bpe(),
        eos_token=_IM_END,
        pad_token=_IM_END,
        extra_special_tokens={"image_token": _IMAGE},
        chat_template=CHAT_TEMPLATE,
        model_max_length=1024,
    )


def _llama_config(tokenizer: Any, width: int = 32) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )


def _clip_text_kwargs(tokenizer: Any) -> dict[str, Any]:
    """CLIP text-encoder config fields that must agree with the tiny CLIP tokenizer."""
    return dict(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_position_embeddings=tokenizer.model_max_length,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        layer_norm_eps=1e-5,
        hidden_act="gelu",
        projection_dim=32,
    )


# --------------------------------------------------------------------------
# public builders


def build_tiny_clip_tokenizer(path: PathLike, pad_token: str = _CLIP_EOS) -> CLIPTokenizer:
    """Build a tiny but real ``transformers.CLIPTokenizer`` and save it into ``path``.

    The vocabulary has CLIP's layout (byte characters, the same with ``</w>``,
    merged tokens, ``<|startoftext|>``, ``<|endoftext|>``) with merges for a few
    hundred common English words, so "a red cat" is three tokens and unknown
    words fall back to pieces and characters. bos is ``<|startoftext|>``, eos
    ``<|endoftext|>``, pad ``pad_token`` (``<|endoftext|>`` as in SD 1.x; SD 2.x and
    SDXL's second tokenizer pad with ``"!"``), ``model_max_length`` 77.
    """
    return write_clip_tokenizer(_as_dir(path), _CLIP_WORDS, pad_token=pad_token)


def _tiny_unet(in_channels: int, cross_attention_dim: int, **extra: Any) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=32,
        in_channels=in_channels,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=2,  # the number of heads, in diffusers' old naming
        cross_attention_dim=cross_attention_dim,
        norm_num_groups=32,
        **extra,
    )


def _tiny_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=32,
        sample_size=64,
    )


def _sd_pipeline(tokenizer: Any, inpaint: bool, sd2: bool = False) -> Any:
    """SD 1.5-shaped pipeline; ``sd2`` gives SD 2.x's traits (v-prediction, linear attention projections)."""
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline, StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel

    pipeline_cls = StableDiffusionInpaintPipeline if inpaint else StableDiffusionPipeline
    return pipeline_cls(
        vae=_tiny_vae(),
        text_encoder=CLIPTextModel(CLIPTextConfig(**_clip_text_kwargs(tokenizer))),
        tokenizer=tokenizer,
        # Inpainting UNets take latents + mask + masked-image latents.
        unet=_tiny_unet(in_channels=9 if inpaint else 4, cross_attention_dim=32, use_linear_projection=sd2),
        scheduler=DDIMScheduler(
            prediction_type="v_prediction" if sd2 else "epsilon",
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            clip_sample=False,
            set_alpha_to_one=False,
            steps_offset=1,
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _sdxl_pipeline(tokenizer: Any, tokenizer_2: Any, inpaint: bool = False) -> Any:
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline, StableDiffusionXLPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    text_kwargs = _clip_text_kwargs(tokenizer)
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_kwargs))
    # wider than the first, as SDXL's are (and as single-file loading tells them apart)
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**{**text_kwargs, "hidden_size": 48,
                                                                   "intermediate_size": 56}))
    time_embed_dim = 8
    # The UNet attends to both encoders' hidden states, concatenated; its added
    # embedding takes the pooled projection of the second one plus six
    # micro-conditioning numbers (original size, crop, target size).
    unet = _tiny_unet(
        in_channels=9 if inpaint else 4,
        cross_attention_dim=text_encoder.config.hidden_size + text_encoder_2.config.hidden_size,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        projection_class_embeddings_input_dim=6 * time_embed_dim + text_encoder_2.config.projection_dim,
        use_linear_projection=True,
    )
    # The inpainting variant has no aesthetic-score conditioning, like SDXL inpainting 0.1.
    pipeline_cls, extra = (
        (StableDiffusionXLInpaintPipeline, {"requires_aesthetics_score": False})
        if inpaint
        else (StableDiffusionXLPipeline, {})
    )
    return pipeline_cls(
        vae=_tiny_vae(),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            steps_offset=1,
            timestep_spacing="leading",
        ),
        add_watermarker=False,
        **extra,
    )


def build_tiny_sd(path: PathLike, variant: SDVariant = "sd15", seed: int = 0) -> Path:
    """Build a tiny random Stable Diffusion pipeline directory at ``path``.

    ``variant``:

    - ``"sd15"``: ``StableDiffusionPipeline`` (4-channel UNet, DDIM scheduler);
    - ``"sd15-inpaint"``: ``StableDiffusionInpaintPipeline`` (9-channel UNet);
    - ``"sd2"``: ``StableDiffusionPipeline`` with SD 2.x's traits: tokenizer
      padding with ``"!"``, v-prediction, linear attention projections;
    - ``"sdxl"``: ``StableDiffusionXLPipeline`` (two text encoders and
      tokenizers, the second padding with ``"!"``, ``text_time`` added
      conditioning, Euler scheduler);
    - ``"sdxl-inpaint"``: ``StableDiffusionXLInpaintPipeline`` (the same with
      a 9-channel UNet, no aesthetic-score conditioning).

    The VAE downsamples by 2, so a 64x64 image is a 32x32 latent. No safety
    checker. Saved with ``save_pretrained(safe_serialization=True)``; it loads
    with ``AutoPipelineForText2Image`` (or ``AutoPipelineForInpainting``).
    Returns ``path``.
    """
    if variant not in SD_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {SD_VARIANTS}")
    out = _as_dir(path)
    tokenizer = build_tiny_clip_tokenizer(out / "tokenizer", pad_token="!" if variant == "sd2" else _CLIP_EOS)
    with _seeded(seed):
        if variant.startswith("sdxl"):
            tokenizer_2 = build_tiny_clip_tokenizer(out / "tokenizer_2", pad_token="!")
            pipe = _sdxl_pipeline(tokenizer, tokenizer_2, inpaint=variant == "sdxl-inpaint")
        else:
            pipe = _sd_pipeline(tokenizer, inpaint=variant == "sd15-inpaint", sd2=variant == "sd2")
    pipe.save_pretrained(out, safe_serialization=True)
    return out


def build_tiny_llava(path: PathLike, seed: int = 0) -> Path:
    """Build a tiny random LLaVA-format model and its processor at ``path``.

    A ``LlavaForConditionalGeneration`` (CLIP vision tower on 32 px images in
    8 px patches, 2-layer Llama) with a ``LlavaProcessor``: a
    ``CLIPImageProcessorPil`` and a ChatML fast tokenizer (see
    :data:`CHAT_TEMPLATE`) whose ``<image>`` token the processor expands to the
    16 image-feature positions the model fills. Loads with ``AutoProcessor`` and
    ``LlavaForConditionalGeneration.from_pretrained``. Returns ``path``.
    """
    from transformers import (
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    from transformers.models.clip import CLIPImageProcessorPil

    out = _as_dir(path)
    tokenizer = _chat_tokenizer()
    vision_config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=_IMAGE_SIZE,
        patch_size=_PATCH_SIZE,
        projection_dim=32,
    )
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=_llama_config(tokenizer),
        image_token_index=tokenizer.convert_tokens_to_ids(_IMAGE),
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        projector_hidden_act="gelu",
    )
    with _seeded(seed):
        model = LlavaForConditionalGeneration(config)
    model.save_pretrained(out, safe_serialization=True)

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": _IMAGE_SIZE},
        crop_size={"height": _IMAGE_SIZE, "width": _IMAGE_SIZE},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=_PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the vision tower's CLS token
        image_token=_IMAGE,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)
    return out


def build_tiny_causal_lm(path: PathLike, seed: int = 0, width: int = 32) -> Path:
    """Build a tiny random text-only Llama chat model at ``path``.

    A 2-layer ``LlamaForCausalLM`` (``width`` wide; 4-bit quantization wants
    at least 64) with the same ChatML fast tokenizer as
    :func:`build_tiny_llava`. Loads with ``AutoTokenizer`` and
    ``AutoModelForCausalLM``. Returns ``path``.
    """
    from transformers import LlamaForCausalLM

    out = _as_dir(path)
    tokenizer = _chat_tokenizer()
    with _seeded(seed):
        model = LlamaForCausalLM(_llama_config(tokenizer, width))
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_clip_vision(path: PathLike, seed: int = 0) -> Path:
    """Build a tiny random ``CLIPVisionModel`` at ``path``, shaped like the world's (32 px pictures, 8 px patches)."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    out = _as_dir(path)
    with _seeded(seed):
        config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  image_size=32, patch_size=8, hidden_act="quick_gelu")
        CLIPVisionModel(config).save_pretrained(out)
    return out
