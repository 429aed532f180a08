"""Converting released LLaVA/LLMGA checkpoints to the transformers LLaVA format.

The original LLaVA code (which LLMGA's released checkpoints use) saves a
``LlavaLlamaForCausalLM``: the language model's weights under ``model.*`` and
``lm_head``, the projector under ``model.mm_projector.{0,2}`` (``mlp2x_gelu``)
or ``model.mm_projector`` (``linear``), and the vision tower only as a hub id in
``config.json`` (``mm_vision_tower``), its weights rarely saved. The image is
not a token: the code splices it in at a sentinel id. The chat format is a
"conversation template" named in the serving script, not in the checkpoint.

:func:`convert_llava_checkpoint` builds a ``LlavaForConditionalGeneration`` from
that checkpoint plus a local CLIP vision tower directory, adds an ``<image>``
token, writes the chat template you name (never guessed from a folder name),
and saves model and processor so ``llmga.brain.load_brain`` loads them.

Each part is loaded with ``load_state_dict(strict=True)`` into the matching
transformers module, so a missing or unexpected weight is an error, not a
silently random layer.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .checkpoints import check_transformers_dir
from .errors import InvalidInputError, ModelNotFoundError

IMAGE_TOKEN = "<image>"

# Chat templates of the original conversation templates, as Jinja for
# ``apply_chat_template``. A system message replaces the template's default.
_VICUNA_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
_CONTENT = (
    "{%- macro content(m) -%}{%- if m['content'] is string -%}{{- m['content'] -}}{%- else -%}"
    "{%- for part in m['content'] -%}{%- if part['type'] == 'image' -%}{{- '<image>\\n' -}}"
    "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
)
CHAT_TEMPLATES = {
    # LLaVA v1 / Vicuna: "SYSTEM USER: ... ASSISTANT: ...</s>USER: ..."
    "vicuna_v1": _CONTENT
    + "{%- if messages[0]['role'] == 'system' -%}{{- content(messages[0]) + ' ' -}}"
    + '{%- else -%}{{- "' + _VICUNA_SYSTEM + ' " -}}{%- endif -%}'
    + "{%- for m in messages if m['role'] != 'system' -%}"
    + "{%- if m['role'] == 'user' -%}{{- 'USER: ' + content(m) + ' ' -}}"
    + "{%- else -%}{{- 'ASSISTANT: ' + content(m) + '</s>' -}}{%- endif -%}{%- endfor -%}"
    + "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}",
    # Llama 2 chat: "[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s><s>[INST] ..."
    "llama_2": _CONTENT
    + "{%- set ns = namespace(system='') -%}"
    + "{%- if messages[0]['role'] == 'system' -%}{%- set ns.system = content(messages[0]) -%}{%- endif -%}"
    + "{%- for m in messages if m['role'] != 'system' -%}"
    + "{%- if m['role'] == 'user' -%}{{- '<s>[INST] ' -}}"
    + "{%- if loop.first and ns.system -%}{{- '<<SYS>>\\n' + ns.system + '\\n<</SYS>>\\n\\n' -}}{%- endif -%}"
    + "{{- content(m) + ' [/INST]' -}}"
    + "{%- else -%}{{- ' ' + content(m) + ' </s>' -}}{%- endif -%}{%- endfor -%}",
    # Mistral instruct: "[INST] ... [/INST]...</s>[INST] ..."
    "mistral_instruct": _CONTENT
    + "{%- set ns = namespace(system='') -%}"
    + "{%- if messages[0]['role'] == 'system' -%}{%- set ns.system = content(messages[0]) -%}{%- endif -%}"
    + "{{- '<s>' -}}{%- for m in messages if m['role'] != 'system' -%}"
    + "{%- if m['role'] == 'user' -%}{{- '[INST] ' -}}"
    + "{%- if loop.first and ns.system -%}{{- ns.system + '\\n\\n' -}}{%- endif -%}"
    + "{{- content(m) + ' [/INST]' -}}"
    + "{%- else -%}{{- content(m) + '</s>' -}}{%- endif -%}{%- endfor -%}",
}


def convert_llava_checkpoint(src: str | Path, vision_tower: str | Path, dst: str | Path, template: str) -> Path:
    """Convert an original-layout LLaVA/LLMGA checkpoint at ``src`` into ``dst``.

    ``vision_tower`` is a local CLIP vision model directory (the one named by
    the checkpoint's ``mm_vision_tower``); ``template`` is one of
    :data:`CHAT_TEMPLATES` (the conversation template the model was trained with).
    """
    from transformers import (
        AutoConfig,
        AutoTokenizer,
        CLIPVisionModel,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    from transformers.models.clip import CLIPImageProcessorPil

    if template not in CHAT_TEMPLATES:
        raise InvalidInputError(f"unknown chat template '{template}'; choose one of {', '.join(CHAT_TEMPLATES)}")
    src, dst = check_transformers_dir(src), Path(dst)
    vision_dir = check_transformers_dir_no_tokenizer(vision_tower)
    original = json.loads((src / "config.json").read_text())
    if "mm_hidden_size" not in original:
        raise InvalidInputError(f"{src}/config.json has no mm_* keys: not an original-layout LLaVA checkpoint")
    weights = _load_weights(src)

    tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=True)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    text_config = AutoConfig.for_model(**_text_config(original))
    vision = CLIPVisionModel.from_pretrained(vision_dir, local_files_only=True)
    config = LlavaConfig(
        vision_config=vision.config,
        text_config=text_config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=original.get("mm_vision_select_layer", -2),
        vision_feature_select_strategy="full" if original.get("mm_vision_select_feature") == "cls_patch" else "default",
        projector_hidden_act="gelu",
        multimodal_projector_bias=True,
    )
    model = LlavaForConditionalGeneration(config)
    inner = model.model
    language = {k[len("model.") :]: v for k, v in weights.items() if _is_language_weight(k)}
    inner.language_model.load_state_dict(language, strict=True)
    model.lm_head.load_state_dict({"weight": weights["lm_head.weight"]}, strict=True)
    inner.multi_modal_projector.load_state_dict(_projector(weights, original), strict=True)
    saved_vision = {
        k[len("model.vision_tower.vision_tower.") :]: v
        for k, v in weights.items()
        if k.startswith("model.vision_tower.vision_tower.")
    }
    vision_state = saved_vision or vision.state_dict()
    inner.vision_tower.load_state_dict(_match_prefix(vision_state, inner.vision_tower.state_dict()), strict=True)
    add_token_rows(model, len(tokenizer))

    size = vision.config.image_size
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size}),
        tokenizer=tokenizer,
        patch_size=vision.config.patch_size,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        num_additional_image_tokens=1,
        image_token=IMAGE_TOKEN,
        chat_template=CHAT_TEMPLATES[template],
    )
    tokenizer.chat_template = CHAT_TEMPLATES[template]
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dst, safe_serialization=True)
    processor.save_pretrained(dst)
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
    if "lm_head.weight" not in weights:
        raise InvalidInputError(f"no lm_head.weight in the weights of {src}")
    return weights


def _text_config(original: dict) -> dict:
    """The language model's config: the original minus LLaVA's keys, as its base model type."""
    kind = original.get("model_type", "llava_llama")
    base = {"llava_llama": "llama", "llava": "llama", "llava_mistral": "mistral", "llava_mixtral": "mixtral"}
    if kind not in base:
        raise InvalidInputError(f"unsupported LLaVA model_type '{kind}' (known: {', '.join(base)})")
    skip = {"architectures", "model_type", "_name_or_path", "transformers_version", "auto_map"}
    text = {k: v for k, v in original.items() if not k.startswith(("mm_", "tune_", "freeze_")) and k not in skip}
    text.pop("image_aspect_ratio", None)
    text.pop("tokenizer_padding_side", None)
    return {"model_type": base[kind], **text}


def _is_language_weight(key: str) -> bool:
    return key.startswith("model.") and not key.startswith(("model.mm_projector", "model.vision_tower"))


def _projector(weights: dict[str, torch.Tensor], original: dict) -> dict[str, torch.Tensor]:
    kind = original.get("mm_projector_type", "linear")
    if kind != "mlp2x_gelu":
        raise InvalidInputError(
            f"projector type '{kind}' is not supported; transformers' LLaVA has the mlp2x_gelu projector"
        )
    return {
        "linear_1.weight": weights["model.mm_projector.0.weight"],
        "linear_1.bias": weights["model.mm_projector.0.bias"],
        "linear_2.weight": weights["model.mm_projector.2.weight"],
        "linear_2.bias": weights["model.mm_projector.2.bias"],
    }


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
