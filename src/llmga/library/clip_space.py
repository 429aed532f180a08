"""A CLIP space: pictures and texts to unit vectors, from a transformers ``CLIPModel`` folder.

The library (:mod:`.vectors`) stores pictures in it; embedding control's
retrieval head learns to map ``[IMG]`` states into it. ``spec`` is a folder or
a shipped CLIP's name (``world-clip``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from .. import registry
from ..errors import ModelNotFoundError


def clip_folder(spec: str | Path) -> Path:
    """The folder of the CLIP named by ``spec`` (a shipped name or a path), checked."""
    folder = registry.shipped(str(spec), registry.CLIP) or Path(spec).expanduser()
    if not (folder / "config.json").is_file():
        shipped = ", ".join(registry.names(registry.CLIP))
        raise ModelNotFoundError(f"{spec} is not a CLIP model folder (no config.json); give a transformers "
                                 f"CLIPModel folder or a shipped CLIP ({shipped})")
    return folder


class ClipSpace:
    """A CLIP model's joint space: :meth:`images` and :meth:`texts` give unit vectors of width :attr:`dim`."""

    def __init__(self, spec: str | Path, batch_size: int = 64) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        self.spec = str(spec)
        folder = clip_folder(spec)
        self.model = CLIPModel.from_pretrained(folder, local_files_only=True).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True, backend="pil")
        self.dim = self.model.config.projection_dim
        self.batch_size = batch_size

    @torch.no_grad()
    def images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = [im.convert("RGB") for im in images[start : start + self.batch_size]]
            pixels = self.processor(images=batch, return_tensors="pt").pixel_values
            out.append(_unit(_tensor(self.model.get_image_features(pixel_values=pixels))))
        return torch.cat(out) if out else torch.zeros(0, self.dim)

    @torch.no_grad()
    def texts(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        return _unit(_tensor(self.model.get_text_features(**tokens)))


def _tensor(output) -> torch.Tensor:
    """transformers 5 may return a model output where older versions returned the tensor."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
