"""Tiny LoRAs for a tiny Stable Diffusion pipeline, in the two formats people share them in.

:func:`build_tiny_lora` makes one random LoRA on the UNet's attention
projections and the text encoder's, and writes it either as diffusers saves
LoRAs (``pytorch_lora_weights.safetensors`` with ``unet.…lora_A/lora_B`` keys)
or as kohya's sd-scripts / A1111 do (``lora_unet_…``/``lora_te_…`` keys with
``lora_down``/``lora_up`` and an ``alpha``). The same seed gives the same
weights in both formats, so the two must paint the same picture.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .tiny import PathLike, _seeded

__all__ = ["build_tiny_lora"]

_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "q_proj", "k_proj", "v_proj", "out_proj")


def build_tiny_lora(pipeline_dir: PathLike, out: PathLike, kind: str = "diffusers", rank: int = 4, seed: int = 0,
                    std: float = 0.3) -> Path:
    """Write a random LoRA for the SD pipeline folder ``pipeline_dir`` as ``kind`` ("diffusers" or "kohya")
    to ``out`` (a folder for diffusers, a ``.safetensors`` file for kohya); return the path."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel

    folder, out = Path(pipeline_dir), Path(out)
    parts = {"unet": UNet2DConditionModel.from_pretrained(folder / "unet"),
             "text_encoder": CLIPTextModel.from_pretrained(folder / "text_encoder")}
    weights: dict[str, torch.Tensor] = {}
    with _seeded(seed):
        for part, model in parts.items():
            for name, module in model.named_modules():
                if isinstance(module, torch.nn.Linear) and name.endswith(_TARGETS):
                    down = torch.randn(rank, module.in_features) * std
                    up = torch.randn(module.out_features, rank) * std
                    weights.update(_named(part, name, down, up, rank, kind))
    if kind == "diffusers":
        out.mkdir(parents=True, exist_ok=True)
        save_file(weights, out / "pytorch_lora_weights.safetensors")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_file(weights, out, metadata={"ss_network_module": "networks.lora"})
    return out


def _named(part: str, module: str, down: torch.Tensor, up: torch.Tensor, rank: int, kind: str) -> dict:
    if kind == "diffusers":
        return {f"{part}.{module}.lora_A.weight": down, f"{part}.{module}.lora_B.weight": up}
    if kind != "kohya":
        raise ValueError(f"unknown LoRA kind {kind!r}")
    prefix = ("lora_unet_" if part == "unet" else "lora_te_") + module.replace(".", "_")
    # kohya scales by alpha / rank; alpha = rank makes the scale 1, as diffusers' own format
    return {f"{prefix}.lora_down.weight": down, f"{prefix}.lora_up.weight": up, f"{prefix}.alpha": torch.tensor(
        float(rank))}
