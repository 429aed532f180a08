"""A tiny random ControlNet, in the real diffusers on-disk format.

Saved like a real ControlNet checkpoint (``config.json`` plus
``diffusion_pytorch_model.safetensors``), it loads with
``diffusers.ControlNetModel.from_pretrained`` and fits the tiny Stable
Diffusion stacks of :func:`llmga.testing.build_tiny_sd`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .tiny import PathLike, _as_dir, _seeded, _tiny_unet

__all__ = ["build_tiny_controlnet"]

# One stride-2 step: the control image is downsampled by 2, as the tiny VAE does.
_CONDITIONING_CHANNELS = (16, 32)


def build_tiny_controlnet(path: PathLike, base_path: PathLike | None = None, seed: int = 0) -> Path:
    """Build a tiny random ``ControlNetModel`` directory at ``path``; return ``path``.

    Without ``base_path`` it matches ``build_tiny_sd(variant="sd15")``'s UNet
    (cross-attention dim 32, blocks (32, 64)). With ``base_path`` (any tiny SD
    directory, SDXL included) it is made from that pipeline's UNet with
    ``ControlNetModel.from_unet``, copying its weights, as ControlNet training
    starts. Either way its zero convolutions get random weights: a fresh
    ControlNet's are zero, and it would ignore the control image.
    """
    from diffusers import ControlNetModel, UNet2DConditionModel

    out = _as_dir(path)
    with _seeded(seed):
        if base_path is None:
            unet, copy_weights = _tiny_unet(in_channels=4, cross_attention_dim=32), False
        else:
            unet, copy_weights = UNet2DConditionModel.from_pretrained(Path(base_path) / "unet"), True
        controlnet = ControlNetModel.from_unet(
            unet,
            conditioning_embedding_out_channels=_CONDITIONING_CHANNELS,
            load_weights_from_unet=copy_weights,
        )
        _randomize_zero_convs(controlnet)
    controlnet.save_pretrained(out, safe_serialization=True)
    return out


@torch.no_grad()
def _randomize_zero_convs(controlnet: torch.nn.Module) -> None:
    """Give the zero-initialised convolutions random weights (zero biases), as training would.

    The control image's embedding gets the largest ones, so a different control
    image visibly changes the painting (most where the images differ).
    """
    embedding_out = controlnet.controlnet_cond_embedding.conv_out
    for conv in (embedding_out, *controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block):
        torch.nn.init.normal_(conv.weight, std=3.0 if conv is embedding_out else 0.3)
        torch.nn.init.zeros_(conv.bias)
