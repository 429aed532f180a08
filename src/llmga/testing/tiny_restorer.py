"""A tiny DiffRIR restorer folder with random weights, in the real on-disk format (for tests)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..restore import NetworkConfig, StageTwo, save_restorer

TINY = NetworkConfig(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 1, 2, 2), n_encoder_res=1,
                     n_feats=4)


def build_tiny_restorer(path: str | Path, seed: int = 0, **changes) -> Path:
    """Write a restorer folder (``changes``: :class:`NetworkConfig` fields, e.g. ``scale=2``)."""
    torch.manual_seed(seed)
    return save_restorer(StageTwo(NetworkConfig(**{**TINY.to_dict(), **changes})), path)
