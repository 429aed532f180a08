"""LoRAs on a painter, per request: diffusers and kohya/A1111 files, several at once, each with its weight.

A LoRA is loaded into the pipeline's UNet (and text encoders, where it has
weights for them) the first time a request names it, under an adapter name of
its own, and stays loaded; each call then turns on exactly the LoRAs it names,
with their scales (``set_adapters``), or turns LoRAs off. diffusers reads both
formats (its own ``unet.…lora_A`` keys and kohya's ``lora_unet_…lora_down``).
Pipelines derived from one another share their UNet, so they share its LoRAs.

A LoRA made for another base family is refused before it loads: the width its
cross-attention layers expect (768 SD 1.x, 1024 SD 2.x, 2048 SDXL) must be the
painter's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import torch

from ..errors import InvalidInputError, ModelNotFoundError
from ..settings import LoraSpec

_LOADED: WeakKeyDictionary[Any, dict[str, str]] = WeakKeyDictionary()  # unet -> {resolved path: adapter name}
_FAMILY = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL"}


def activate_loras(pipeline: Any, loras: Sequence[LoraSpec]) -> None:
    """Turn on exactly ``loras`` (loading any not loaded yet) on ``pipeline``, or LoRAs off when empty."""
    loaded = _LOADED.setdefault(pipeline.unet, {})
    if not loras:
        if loaded:
            pipeline.disable_lora()
        return
    names = [_load(pipeline, lora.path, loaded) for lora in loras]
    pipeline.enable_lora()
    pipeline.set_adapters(names, adapter_weights=[lora.scale for lora in loras])


def _load(pipeline: Any, path: str, loaded: dict[str, str]) -> str:
    file = _lora_file(path)
    key = str(file.resolve())
    if key not in loaded:
        from safetensors.torch import load_file

        state = load_file(file) if file.suffix == ".safetensors" else torch.load(file, map_location="cpu",
                                                                                 weights_only=True)
        _check_base(state, pipeline.unet.config.cross_attention_dim, file)
        name = "lora_" + hashlib.sha1(key.encode()).hexdigest()[:10]
        try:
            pipeline.load_lora_weights(state, adapter_name=name)
        except (ValueError, RuntimeError, KeyError) as exc:
            raise InvalidInputError(f"cannot apply the LoRA {file} to this painter: {exc}") from exc
        loaded[key] = name
    return loaded[key]


def _lora_file(path: str) -> Path:
    """The weights file of a LoRA given as a file or a diffusers LoRA folder."""
    found = Path(path).expanduser()
    if found.is_dir():
        files = sorted(found.glob("*.safetensors")) or sorted(found.glob("*.bin"))
        if not files:
            raise ModelNotFoundError(f"the LoRA folder {found} holds no .safetensors or .bin file")
        found = files[0]
    if not found.is_file():
        raise ModelNotFoundError(f"LoRA {found} does not exist (give a .safetensors file or a diffusers LoRA folder)")
    return found


def _check_base(state: dict[str, torch.Tensor], painter_dim: int, file: Path) -> None:
    """Refuse a LoRA whose cross-attention input width is not the painter's."""
    for key, value in state.items():
        lowered = key.lower()
        if "attn2" in lowered and "to_k" in lowered and any(d in lowered for d in ("lora_down", "lora_a", "lora.down")):
            made_for = value.shape[1]
            if made_for != painter_dim:
                raise InvalidInputError(
                    f"the LoRA {file} was made for {_FAMILY.get(made_for, f'a {made_for}-wide')} base, but the "
                    f"painter is {_FAMILY.get(painter_dim, f'{painter_dim}-wide')}; pick a LoRA for this base"
                )
            return
