"""Converting released LLaVA/LLMGA checkpoints to the transformers LLaVA format.

The original LLaVA code (which LLMGA's released checkpoints use) saves a
``Llava<Family>ForCausalLM``: the language model's weights under ``model.*`` and
``lm_head`` (absent when tied to the embeddings: Gemma, small Qwen2), the
projector under ``model.mm_projector.{0,2}`` (``mlp2x_gelu``) or
``model.mm_projector`` (``linear``), and the vision tower only as a hub id in
``config.json`` (``mm_vision_tower``), its weights rarely saved. The image is
not a token: the code splices it in at a sentinel id. The chat format is a
"conversation template" named in the serving script (:mod:`.chat_formats`), and
the image goes through ``image_aspect_ratio``: LLaVA-1.5's ``pad`` (pad to a
square with the CLIP mean colour), LLMGA's ``resizesquare`` (stretch to a
square), or CLIP's resize and centre crop.

:func:`convert_llava_checkpoint` builds a ``LlavaForConditionalGeneration`` for
any released family (:data:`FAMILIES`: Llama/Vicuna, Llama-2, Llama-3, Mistral,
Qwen2, Phi-3, Gemma) from that checkpoint plus a local CLIP vision tower
directory, adds an ``<image>`` token, and saves model and processor (the
image handling as the checkpoint's config says, the chat template, and a
generation config that stops at the format's end-of-turn tokens) so
``llmga.brain.load_brain`` runs it. Every part is loaded with
``load_state_dict(strict=True)``, so a missing or unexpected weight is an
error, not a silently random layer.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..checkpoints import check_transformers_dir
from ..errors import InvalidInputError, ModelNotFoundError
from .chat_formats import CHAT_FORMATS, CHAT_TEMPLATES, guess_format

__all__ = ["CHAT_FORMATS", "CHAT_TEMPLATES", "FAMILIES", "IMAGE_TOKEN", "add_token_rows",
           "check_transformers_dir_no_tokenizer", "convert_llava_checkpoint"]

IMAGE_TOKEN = "<image>"

#: the original code's ``model_type`` (lower-cased) -> the transformers model type of its language model
FAMILIES = {
    "llava": "llama", "llava_llama": "llama", "llava_mistral": "mistral", "llava_mixtral": "mixtral",
    "llava_qwen2": "qwen2", "llava_qwen": "qwen2", "llava_phi3": "phi3", "llava_gemma": "gemma",
}

#: what the original code does with an image before CLIP's processor, by ``image_aspect_ratio``
IMAGE_MODES = ("pad", "resizesquare", "crop")


def convert_llava_checkpoint(
    src: str | Path, vision_tower: str | Path, dst: str | Path, template: str | None = None
) -> Path:
    """Convert an original-layout LLaVA/LLMGA checkpoint at ``src`` into ``dst``; return ``dst``.

    ``vision_tower`` is a local CLIP vision model directory (the one named by
    the checkpoint's ``mm_vision_tower``); ``template`` is one of
    :data:`CHAT_FORMATS` (the conversation template the model was trained
    with), or None to take the family's own where only one fits (Qwen2, Phi-3,
    Gemma, Mistral, Llama-3).
    """
    from transformers import AutoTokenizer, CLIPVisionModel, LlavaConfig, LlavaForConditionalGeneration

    if template is not None and template not in CHAT_FORMATS:
        raise InvalidInputError(f"unknown chat template '{template}'; choose one of {', '.join(CHAT_FORMATS)}")
    src, dst = check_transformers_dir(src), Path(dst)
    vision_dir = check_transformers_dir_no_tokenizer(vision_tower)
    original = json.loads((src / "config.json").read_text())
    if "mm_hidden_size" not in original:
        raise InvalidInputError(f"{src}/config.json has no mm_* keys: not an original-layout LLaVA checkpoint")
    text_config = _text_config(original)
    image_mode = _image_mode(original)
    weights = _load_weights(src)

    tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=True)
    template = template or guess_format(text_config.model_type, tokenizer.get_vocab())
    if template is None:
        raise InvalidInputError(
            f"{src} is a {text_config.model_type} checkpoint whose chat format cannot be told from its files; "
            "give --template: llava_llama_2 (LLMGA-MLLM Llama-2), vicuna_v1 (LLMGA Vicuna), llava_v1 (LLaVA-1.5)"
        )
    vocab = len(tokenizer)  # the original code resizes the embeddings to the tokenizer
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    vision = CLIPVisionModel.from_pretrained(vision_dir, local_files_only=True)
    projector, activation = _projector(weights, original, text_config.hidden_size)
    config = LlavaConfig(
        vision_config=vision.config,
        text_config=text_config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=original.get("mm_vision_select_layer", -2),
        vision_feature_select_strategy="full" if original.get("mm_vision_select_feature") == "cls_patch" else "default",
        projector_hidden_act=activation,
        multimodal_projector_bias=True,
    )
    model = LlavaForConditionalGeneration(config)
    inner = model.model
    language = {k[len("model.") :]: v for k, v in weights.items() if _is_language_weight(k)}
    rows = min(vocab, language["embed_tokens.weight"].shape[0])  # rows past the tokenizer are dropped, as there
    language["embed_tokens.weight"] = language["embed_tokens.weight"][:rows]
    model.resize_token_embeddings(rows)
    inner.language_model.load_state_dict(language, strict=True)
    if not text_config.tie_word_embeddings:
        model.lm_head.load_state_dict({"weight": _lm_head(weights, src)[:rows]}, strict=True)
    inner.multi_modal_projector.load_state_dict(projector, strict=True)
    saved_vision = {
        k[len("model.vision_tower.vision_tower.") :]: v
        for k, v in weights.items()
        if k.startswith("model.vision_tower.vision_tower.")
    }
    vision_state = saved_vision or vision.state_dict()
    inner.vision_tower.load_state_dict(_match_prefix(vision_state, inner.vision_tower.state_dict()), strict=True)
    add_token_rows(model, len(tokenizer))
    _generation_config(model, tokenizer, CHAT_FORMATS[template].stops)

    processor = _processor(vision_dir, vision.config, tokenizer, config, image_mode, CHAT_TEMPLATES[template])
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dst, safe_serialization=True)
    processor.save_pretrained(dst)
    (dst / "llmga_conversion.json").write_text(json.dumps(
        {"source": str(src), "template": template, "image_aspect_ratio": image_mode, "family": text_config.model_type},
        indent=2))
    return dst


def check_transformers_dir_no_tokenizer(path: str | Path) -> Path:
    """A vision tower directory: config.json and weights (no tokenizer needed)."""
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"vision tower {path} has no config.json; point --vision-tower at a local CLIP vision model "
            "directory (e.g. openai/clip-vit-large-patch14-336 saved with save_pretrained)"
        )
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise ModelNotFoundError(f"vision tower {path} has no weights (*.safetensors or *.bin)")
    return path


def _load_weights(src: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    weights: dict[str, torch.Tensor] = {}
    for file in sorted(src.glob("*.safetensors")):
        weights.update(load_file(file))
    for file in sorted(src.glob("*.bin")):
        weights.update(torch.load(file, map_location="cpu", weights_only=True))
    if "model.embed_tokens.weight" not in weights:
        raise InvalidInputError(f"no model.embed_tokens.weight in the weights of {src}")
    return weights


def _lm_head(weights: dict[str, torch.Tensor], src: Path) -> torch.Tensor:
    if "lm_head.weight" not in weights:
        raise InvalidInputError(f"no lm_head.weight in the weights of {src}, and its config does not tie it "
                                "to the embeddings (tie_word_embeddings)")
    return weights["lm_head.weight"]


def _text_config(original: dict):
    """The language model's config: the original minus LLaVA's keys, as its base model type."""
    from transformers import AutoConfig

    kind = str(original.get("model_type", "llava_llama"))
    if kind.lower() not in FAMILIES:
        raise InvalidInputError(
            f"unsupported LLaVA model_type '{kind}' (known: {', '.join(sorted(set(FAMILIES) - {'llava'}))})"
        )
    skip = {"architectures", "model_type", "_name_or_path", "transformers_version", "auto_map", "image_aspect_ratio",
            "tokenizer_padding_side", "tokenizer_model_max_length", "image_grid_pinpoints", "use_mm_proj"}
    text = {k: v for k, v in original.items() if not k.startswith(("mm_", "tune_", "freeze_", "unfreeze_"))
            and k not in skip}
    rope = text.get("rope_scaling")
    if isinstance(rope, dict) and rope.get("type") in ("su", "longrope") and "original_max_position_embeddings" in text:
        # Phi-3 128k: the original config keeps this next to rope_scaling; transformers wants it inside
        text["rope_scaling"] = {**rope, "original_max_position_embeddings": text["original_max_position_embeddings"]}
    return AutoConfig.for_model(FAMILIES[kind.lower()], **text)


def _image_mode(original: dict) -> str:
    """``pad``, ``resizesquare`` or ``crop`` (CLIP's own), from the config's ``image_aspect_ratio``."""
    mode = original.get("image_aspect_ratio") or "square"
    if mode in ("pad", "resizesquare"):
        return mode
    if mode == "anyres" or "anyres" in str(original.get("mm_patch_merge_type", "")):
        raise InvalidInputError(
            "this is a LLaVA-NeXT (anyres) checkpoint; convert-llava handles LLaVA-1.5-style models. "
            "Use a llava-hf LLaVA-NeXT model directory as --brain directly"
        )
    return "crop"


def _is_language_weight(key: str) -> bool:
    return key.startswith("model.") and not key.startswith(("model.mm_projector", "model.vision_tower"))


def _projector(weights: dict[str, torch.Tensor], original: dict, hidden: int) -> tuple[dict[str, torch.Tensor], str]:
    """The projector's weights in transformers' two-layer form, and its activation.

    ``mlp2x_gelu`` maps one to one. ``linear`` (one matrix, the first LLMGA
    Llama-2 release) becomes the first layer, an identity activation and an
    identity second layer, which computes exactly the same features.
    """
    kind = original.get("mm_projector_type", "linear")
    if kind == "mlp2x_gelu":
        names = {"linear_1": "model.mm_projector.0", "linear_2": "model.mm_projector.2"}
        return {f"{new}.{p}": weights[f"{old}.{p}"] for new, old in names.items() for p in ("weight", "bias")}, "gelu"
    if kind == "linear":
        return {
            "linear_1.weight": weights["model.mm_projector.weight"],
            "linear_1.bias": weights["model.mm_projector.bias"],
            "linear_2.weight": torch.eye(hidden, dtype=weights["model.mm_projector.weight"].dtype),
            "linear_2.bias": torch.zeros(hidden, dtype=weights["model.mm_projector.bias"].dtype),
        }, "linear"
    raise InvalidInputError(
        f"projector type '{kind}' is not supported: transformers' LLaVA holds linear and mlp2x_gelu projectors"
    )


def _processor(vision_dir: Path, vision_config, tokenizer, config, image_mode: str, chat_template: str):
    """A LlavaProcessor whose image processor does what the original code did before CLIP (``image_mode``)."""
    from transformers import LlavaProcessor
    from transformers.models.clip import CLIPImageProcessorPil
    from transformers.models.llava import LlavaImageProcessorPil

    size = vision_config.image_size
    stats = _clip_stats(vision_dir)
    crop = {"height": size, "width": size}
    if image_mode == "pad":  # LLaVA-1.5: pad to a square with the mean colour, then CLIP's resize and crop
        images = LlavaImageProcessorPil(do_pad=True, size={"shortest_edge": size}, crop_size=crop, **stats)
    elif image_mode == "resizesquare":  # LLMGA: stretch to a square, then CLIP's resize
        images = CLIPImageProcessorPil(size=dict(crop), do_center_crop=False, **stats)
    else:
        images = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size=crop, **stats)
    tokenizer.chat_template = chat_template
    return LlavaProcessor(
        image_processor=images,
        tokenizer=tokenizer,
        patch_size=vision_config.patch_size,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        num_additional_image_tokens=1,
        image_token=IMAGE_TOKEN,
        chat_template=chat_template,
    )


def _clip_stats(vision_dir: Path) -> dict:
    """The vision tower's normalisation, from its preprocessor_config.json if it has one (else CLIP's)."""
    file = vision_dir / "preprocessor_config.json"
    saved = json.loads(file.read_text()) if file.is_file() else {}
    return {k: saved[k] for k in ("image_mean", "image_std") if k in saved}


def _generation_config(model, tokenizer, stops: tuple[str, ...]) -> None:
    """Stop at the format's end-of-turn tokens; never write the ``<image>`` placeholder."""
    vocab = tokenizer.get_vocab()
    ends = [vocab[s] for s in stops if s in vocab]
    if tokenizer.eos_token_id is not None:
        ends.append(tokenizer.eos_token_id)
    model.generation_config.eos_token_id = list(dict.fromkeys(ends))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.suppress_tokens = [tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)]


def _match_prefix(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename ``state``'s keys to ``target``'s naming when they differ by a leading prefix
    (``vision_model.`` or not, depending on the transformers version)."""
    anchor = "embeddings.patch_embedding.weight"
    source_key = next((k for k in state if k.endswith(anchor)), None)
    target_key = next((k for k in target if k.endswith(anchor)), None)
    if source_key is None or target_key is None:
        raise InvalidInputError("the vision tower is not a CLIP vision transformer (no patch embedding)")
    old, new = source_key[: -len(anchor)], target_key[: -len(anchor)]
    return {new + k[len(old) :]: v for k, v in state.items() if k.startswith(old)}


def add_token_rows(model: torch.nn.Module, vocab: int) -> None:
    """Grow the embeddings for the added tokens; new rows start at the mean of the old ones."""
    old = model.get_input_embeddings().weight.shape[0]
    if vocab <= old:
        return
    model.resize_token_embeddings(vocab, mean_resizing=False)
    with torch.no_grad():
        for emb in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            emb[old:] = emb[:old].mean(dim=0, keepdim=True)
