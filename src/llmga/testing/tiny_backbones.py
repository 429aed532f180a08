"""Tiny random metric backbones in the published formats (for tests of :mod:`llmga.eval.metrics`).

- :func:`build_tiny_inception`: a TorchScript module with the call signature of
  the FID Inception network (``inception-2015-12-05.pt``): pictures in
  [0, 255] in, 2048 features with ``return_features=True``, else 1008 class
  probabilities.
- :func:`build_tiny_lpips`: torchvision's AlexNet weight file layout and the
  lpips package's v0.1 heads layout, random.
- :func:`build_tiny_clip`, :func:`build_tiny_dino`: transformers CLIP and ViT directories.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .tiny import PathLike, _as_dir, _seeded, build_tiny_clip_tokenizer


class _TinyInception(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 5, stride=4)
        self.features = nn.Linear(16, 2048)
        self.classes = nn.Linear(2048, 1008)

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(img / 127.5 - 1)), 1).flatten(1)
        feats = self.features(x)
        if return_features:
            return feats
        return torch.softmax(self.classes(feats), dim=1)


def build_tiny_inception(path: PathLike, seed: int = 0) -> Path:
    """A random stand-in for ``inception-2015-12-05.pt`` (same format and call signature) at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _seeded(seed):
        torch.jit.script(_TinyInception().eval()).save(str(path))
    return path


def build_tiny_lpips(folder: PathLike, seed: int = 0) -> Path:
    """Random ``alexnet-owt-7be5be79.pth`` (torchvision's keys) and ``alex.pth`` (lpips heads) in ``folder``."""
    from ..eval.perceptual import ALEX_WIDTHS, ALEXNET_FILE, HEADS_FILE, AlexNetFeatures

    out = _as_dir(folder)
    with _seeded(seed):
        torch.save(AlexNetFeatures().state_dict(), out / ALEXNET_FILE)
        torch.save({f"lin{i}.model.1.weight": torch.rand(1, width, 1, 1) for i, width in enumerate(ALEX_WIDTHS)},
                   out / HEADS_FILE)
    return out


def build_tiny_clip(path: PathLike, seed: int = 0) -> Path:
    """A random transformers ``CLIPModel`` directory with its tokenizer and image processor."""
    from transformers import CLIPConfig, CLIPModel
    from transformers.models.clip import CLIPImageProcessorPil

    out = _as_dir(path)
    tokenizer = build_tiny_clip_tokenizer(out)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    with _seeded(seed):
        CLIPModel(config).save_pretrained(out, safe_serialization=True)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def build_tiny_dino(path: PathLike, seed: int = 0) -> Path:
    """A random transformers ``ViTModel`` directory (DINO's architecture) with its image processor."""
    from transformers import ViTConfig, ViTModel
    from transformers.models.vit import ViTImageProcessorPil

    out = _as_dir(path)
    config = ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                       image_size=32, patch_size=8)
    with _seeded(seed):
        ViTModel(config).save_pretrained(out, safe_serialization=True)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(out)
    return out
