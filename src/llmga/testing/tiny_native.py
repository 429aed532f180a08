"""A tiny transformers-native image-text-to-text model other than LLaVA-1.5: LLaVA-NeXT, as llava-hf saves it.

:func:`build_tiny_llava_next` writes a ``LlavaNextForConditionalGeneration``
(CLIP vision tower, "anyres" tiling over a grid of 32 px tiles, Llama text model)
with its ``LlavaNextProcessor``, loadable with ``AutoModelForImageTextToText``
and ``AutoProcessor`` as any llava-hf checkpoint is.
"""

from __future__ import annotations

from pathlib import Path

from .tiny import _IMAGE, _IMAGE_SIZE, _PATCH_SIZE, CHAT_TEMPLATE, PathLike, _as_dir, _chat_tokenizer, _llama_config, _seeded

__all__ = ["build_tiny_llava_next"]


def build_tiny_llava_next(path: PathLike, seed: int = 0) -> Path:
    """Build a tiny random LLaVA-NeXT model and processor at ``path``; return ``path``."""
    from transformers import CLIPVisionConfig, LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextProcessor
    from transformers.models.llava_next import LlavaNextImageProcessorPil

    out = _as_dir(path)
    tokenizer = _chat_tokenizer()
    grid = [[_IMAGE_SIZE, _IMAGE_SIZE * 2], [_IMAGE_SIZE * 2, _IMAGE_SIZE], [_IMAGE_SIZE * 2, _IMAGE_SIZE * 2]]
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                                       image_size=_IMAGE_SIZE, patch_size=_PATCH_SIZE, projection_dim=32),
        text_config=_llama_config(tokenizer),
        image_token_index=tokenizer.convert_tokens_to_ids(_IMAGE),
        image_grid_pinpoints=grid,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    with _seeded(seed):
        LlavaNextForConditionalGeneration(config).save_pretrained(out, safe_serialization=True)
    images = LlavaNextImageProcessorPil(size={"shortest_edge": _IMAGE_SIZE}, image_grid_pinpoints=grid,
                                        crop_size={"height": _IMAGE_SIZE, "width": _IMAGE_SIZE})
    LlavaNextProcessor(image_processor=images, tokenizer=tokenizer, patch_size=_PATCH_SIZE,
                       vision_feature_select_strategy="default", num_additional_image_tokens=1, image_token=_IMAGE,
                       chat_template=CHAT_TEMPLATE).save_pretrained(out)
    return out
