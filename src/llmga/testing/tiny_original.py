"""Tiny checkpoints in the ORIGINAL LLaVA/LLMGA layout, one per released family.

:func:`build_tiny_original_llava` writes what the original code's
``save_pretrained`` writes for a ``Llava<Family>ForCausalLM``: a ``config.json``
with the language model's keys plus LLaVA's ``mm_*`` keys and the family's
``model_type`` (``llava_llama``, ``llava_mistral``, ``llava_Qwen2``,
``llava_Phi3``, ``llava_gemma``), the weights under ``model.*``/``lm_head``
with the projector under ``model.mm_projector`` (no ``lm_head`` where the
family ties it to the embeddings), and a tokenizer with the family's special
tokens and begin-of-text rule. A CLIP vision tower directory sits beside it, as
the hub id in ``mm_vision_tower`` names one. :data:`ORIGINAL_FAMILIES` says
which released model each family stands for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .tiny import _CHAT_CORPUS, PathLike, _as_dir, _seeded

__all__ = ["ORIGINAL_FAMILIES", "OriginalFamily", "TinyOriginal", "build_tiny_original_llava"]


@dataclass(frozen=True)
class OriginalFamily:
    """How a released family's checkpoint looks: model type, tokenizer kind, projector, image handling."""

    model_type: str
    base: str
    tokenizer: str
    template: str
    projector: str = "mlp2x_gelu"
    image_aspect_ratio: str = "resizesquare"
    tied: bool = False
    extra_rows: int = 0


ORIGINAL_FAMILIES: dict[str, OriginalFamily] = {
    "vicuna": OriginalFamily("llava_llama", "llama", "llama", "vicuna_v1"),  # LLMGA Vicuna-7B (and -cn)
    "llama_2": OriginalFamily("llava_llama", "llama", "llama", "llava_llama_2", projector="linear"),  # LLMGA-MLLM 7B/13B
    "llama_3": OriginalFamily("llava_llama", "llama", "llama_3", "llama_3"),  # LLMGA Llama-3-8B (and -cn)
    "mistral": OriginalFamily("llava_mistral", "mistral", "llama", "mistral_instruct"),
    "qwen2": OriginalFamily("llava_Qwen2", "qwen2", "qwen2", "qwen_2", tied=True, extra_rows=3),  # 0.5B/1.5B/7B, -cn
    "phi3": OriginalFamily("llava_Phi3", "phi3", "phi3", "phi_3", extra_rows=2),  # Phi-3-mini-128k
    "gemma": OriginalFamily("llava_gemma", "gemma", "gemma", "gemma", tied=True),  # Gemma-2B-it (and -cn)
    "llava_1.5": OriginalFamily("llava_llama", "llama", "llama", "llava_v1", image_aspect_ratio="pad"),
}

#: special tokens by tokenizer kind: (all specials, bos, eos, pad, unk); "metaspace" tokenizers are SentencePiece-like
_TOKENIZERS: dict[str, tuple[list[str], str | None, str, str | None, str | None]] = {
    "llama": (["<unk>", "<s>", "</s>"], "<s>", "</s>", None, "<unk>"),
    "phi3": (["<unk>", "<s>", "</s>", "<|endoftext|>", "<|assistant|>", "<|end|>", "<|user|>", "<|system|>"],
             "<s>", "<|endoftext|>", "<|endoftext|>", "<unk>"),
    "gemma": (["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"], "<bos>", "<eos>", "<pad>",
              "<unk>"),
    "llama_3": (["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
                "<|begin_of_text|>", "<|end_of_text|>", None, None),
    "qwen2": (["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, "<|im_end|>", "<|endoftext|>", None),
}
_BYTE_LEVEL = ("llama_3", "qwen2")
_VISION = dict(hidden_size=24, intermediate_size=32, num_hidden_layers=3, num_attention_heads=4, image_size=32,
               patch_size=8)


@dataclass
class TinyOriginal:
    """A built checkpoint: its folder, the vision tower's, and the language model's config (for references)."""

    path: Path
    vision_tower: Path
    family: str
    spec: OriginalFamily
    lm_config: Any


def build_tiny_original_llava(path: PathLike, family: str, seed: int = 0) -> TinyOriginal:
    """Write a tiny random checkpoint of ``family`` (a key of :data:`ORIGINAL_FAMILIES`) under ``path``.

    ``path/checkpoint`` is the original-layout model, ``path/clip`` its CLIP
    vision tower (32 px images, 8 px patches).
    """
    from transformers import AutoModelForCausalLM, CLIPVisionConfig, CLIPVisionModel

    spec = ORIGINAL_FAMILIES[family]
    root = _as_dir(path)
    ckpt, clip = _as_dir(root / "checkpoint"), root / "clip"
    tokenizer = family_tokenizer(spec.tokenizer)
    tokenizer.save_pretrained(ckpt)
    lm_config = _lm_config(spec, tokenizer)
    with _seeded(seed):
        CLIPVisionModel(CLIPVisionConfig(**_VISION)).save_pretrained(clip)
        lm = AutoModelForCausalLM.from_config(lm_config)
        hidden, vision_hidden = lm_config.hidden_size, _VISION["hidden_size"]
        weights = {k: v.clone() for k, v in lm.state_dict().items()}
        if spec.projector == "linear":
            weights.update({"model.mm_projector.weight": torch.randn(hidden, vision_hidden) * 0.2,
                            "model.mm_projector.bias": torch.randn(hidden) * 0.1})
        else:
            weights.update({"model.mm_projector.0.weight": torch.randn(hidden, vision_hidden) * 0.2,
                            "model.mm_projector.0.bias": torch.randn(hidden) * 0.1,
                            "model.mm_projector.2.weight": torch.randn(hidden, hidden) * 0.2,
                            "model.mm_projector.2.bias": torch.randn(hidden) * 0.1})
    if spec.tied:
        weights.pop("lm_head.weight", None)
    if spec.projector == "linear":
        torch.save(weights, ckpt / "pytorch_model.bin")
    else:
        from safetensors.torch import save_file

        save_file(weights, ckpt / "model.safetensors", metadata={"format": "pt"})
    (ckpt / "config.json").write_text(json.dumps(_original_config(spec, lm_config), indent=2))
    return TinyOriginal(ckpt, clip, family, spec, lm_config)


def _lm_config(spec: OriginalFamily, tokenizer: Any) -> Any:
    from transformers import AutoConfig

    kwargs: dict[str, Any] = dict(
        vocab_size=len(tokenizer) + spec.extra_rows, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=spec.tied,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if spec.base == "phi3":  # Phi-3-mini-128k: LongRoPE ("su") scaling past an original 4k-like context
        kwargs.update(num_key_value_heads=4, original_max_position_embeddings=128,
                      rope_scaling={"type": "su", "short_factor": [1.0, 1.1, 1.2, 1.3],
                                    "long_factor": [2.0, 2.5, 3.0, 4.0], "original_max_position_embeddings": 128})
    if spec.base == "gemma":
        kwargs.update(head_dim=8, num_key_value_heads=1, hidden_activation="gelu_pytorch_tanh")
    return AutoConfig.for_model(spec.base, **kwargs)


def _original_config(spec: OriginalFamily, lm_config: Any) -> dict[str, Any]:
    """config.json as the original code saves it: the language model's keys plus LLaVA's."""
    config = lm_config.to_dict()
    if spec.base == "phi3":  # as the released Phi-3 config writes it
        config.pop("rope_parameters", None)
        config["rope_scaling"] = {k: v for k, v in lm_config.rope_parameters.items()
                                  if k in ("short_factor", "long_factor")} | {"type": "su"}
        config["rope_theta"] = lm_config.rope_parameters.get("rope_theta", 10000.0)
    arch = {"llava_llama": "LlavaLlamaForCausalLM", "llava_mistral": "LlavaMistralForCausalLM",
            "llava_Qwen2": "LlavaQwen2ForCausalLM", "llava_Phi3": "LlavaPhi3ForCausalLM",
            "llava_gemma": "LlavaGemmaForCausalLM"}[spec.model_type]
    tower = "openai/clip-vit-large-patch14" if spec.projector == "linear" else "openai/clip-vit-large-patch14-336"
    config.update(
        architectures=[arch], model_type=spec.model_type, mm_vision_tower=tower, mm_hidden_size=_VISION["hidden_size"],
        mm_projector_type=spec.projector, mm_vision_select_layer=-2, mm_vision_select_feature="patch",
        mm_use_im_start_end=False, mm_use_im_patch_token=False, mm_patch_merge_type="flat",
        image_aspect_ratio=spec.image_aspect_ratio, tune_mm_mlp_adapter=False, freeze_mm_mlp_adapter=False,
        use_mm_proj=True, tokenizer_padding_side="right", tokenizer_model_max_length=2048,
    )
    return config


def family_tokenizer(kind: str) -> Any:
    """A small BPE tokenizer built like the family's own: specials, begin-of-text rule, SentencePiece or byte level."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials, bos, eos, pad, unk = _TOKENIZERS[kind]
    corpus = [line.replace(" <gen_img>", "\n<gen_image>").replace("</gen_img>", "</gen_image>") for line in _CHAT_CORPUS]
    corpus += ["USER: ASSISTANT: [INST] [/INST] <<SYS>> <</SYS>> system user model assistant human\n\n"] * 4
    if kind in _BYTE_LEVEL:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:  # like Llama's tokenizer.json: a "▁" before the text (not Gemma's), spaces as "▁"
        tok = Tokenizer(models.BPE(unk_token=unk, fuse_unk=True))
        steps = [normalizers.Replace(" ", "▁")]
        tok.normalizer = normalizers.Sequence(steps if kind == "gemma" else [normalizers.Prepend("▁"), *steps])
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse()]
                                        + ([] if kind == "gemma" else [decoders.Strip(" ", 1, 0)]))
        alphabet = sorted({c for line in corpus for c in line.replace(" ", "▁")} | {"▁"})
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=alphabet,
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    if bos is not None:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))])
    elif kind in _BYTE_LEVEL:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk,
                                   additional_special_tokens=[s for s in specials if s not in (bos, eos, pad, unk)],
                                   model_max_length=2048)
