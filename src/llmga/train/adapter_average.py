"""One LoRA adapter from several of the same base: the mean of their weight changes (a "model soup").

Runs continued from one adapter on different data or seeds each drift a little
in their own direction; their mean keeps what they share. Each module's mean
change is written back at the adapters' rank through its leading singular
vectors, so the result is as small as any one of them and loads as they do.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import InvalidInputError

WEIGHTS, CONFIG = "adapter_model.safetensors", "adapter_config.json"


def _config(folder: Path) -> dict:
    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        raise InvalidInputError(f"{folder} is not a LoRA adapter folder (no {WEIGHTS} and {CONFIG})")
    return json.loads((folder / CONFIG).read_text())


def _shape(config: dict) -> tuple:
    """What adapters must share to be averaged: base, rank, alpha, modules, rank-stabilised scaling."""
    return (config.get("base_model_name_or_path"), config.get("r"), config.get("lora_alpha"),
            sorted(config.get("target_modules") or []), config.get("use_rslora"))


def average_adapters(folders: Sequence[Path], out: Path) -> tuple[Path, float]:
    """Write the mean of the adapters in ``folders`` to ``out`` at their rank; returns ``out`` and the share of
    the mean change's energy (squared Frobenius norm) the written rank keeps. Files other than the weights and
    config (a base's name, a system prompt; not a model card) are copied from the first folder."""
    if len(folders) < 2:
        raise InvalidInputError("averaging needs at least two adapters")
    configs = [_config(Path(f)) for f in folders]
    if any(_shape(c) != _shape(configs[0]) for c in configs):
        raise InvalidInputError(f"the adapters differ in base, rank, alpha or modules: {', '.join(map(str, folders))}")
    rank = configs[0]["r"]
    weights = [load_file(Path(f) / WEIGHTS) for f in folders]
    averaged, kept, total = {}, 0.0, 0.0
    for a_key in (k for k in weights[0] if ".lora_A." in k):
        b_key = a_key.replace(".lora_A.", ".lora_B.")
        change = sum(w[b_key].double() @ w[a_key].double() for w in weights) / len(weights)
        u, s, vh = torch.linalg.svd(change, full_matrices=False)
        kept, total = kept + float((s[:rank] ** 2).sum()), total + float((s ** 2).sum())
        root = s[:rank].sqrt()
        averaged[b_key] = (u[:, :rank] * root).to(weights[0][b_key].dtype).contiguous()
        averaged[a_key] = (root[:, None] * vh[:rank]).to(weights[0][a_key].dtype).contiguous()
    out.mkdir(parents=True, exist_ok=True)
    for extra in Path(folders[0]).iterdir():
        if extra.is_file() and extra.name not in (WEIGHTS, "README.md"):
            shutil.copy(extra, out / extra.name)
    save_file(averaged, out / WEIGHTS)
    return out, kept / total if total else 1.0
