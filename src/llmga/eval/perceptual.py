"""LPIPS, the learned perceptual distance (Zhang et al. 2018), without torchvision.

LPIPS compares two pictures through a frozen network: at each of its taps the
features are unit-normalised along channels, their squared difference is
weighted per channel (the learned linear heads), averaged over space and summed
over taps. The published networks are torchvision's AlexNet (ImageNet weights)
with heads from the ``lpips`` package; torchvision does not import beside this
torch, so :class:`AlexNetFeatures` is AlexNet's convolutional part written out
with torchvision's layer indices, which loads torchvision's weight file
(``alexnet-owt-7be5be79.pth``) as it is. :class:`JudgeLpips` is the miniature
world's stand-in: the judge's conv stages as taps, every channel weighing the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import ModelNotFoundError

#: the AlexNet weights torchvision publishes, and the LPIPS v0.1 linear heads the lpips package ships
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_SOURCE = f"https://download.pytorch.org/models/{ALEXNET_FILE}"
HEADS_FILE = "alex.pth"
HEADS_SOURCE = "the lpips package (pip download lpips: lpips/weights/v0.1/alex.pth)"
#: LPIPS's input scaling: pictures in [-1, 1] are shifted and scaled to ImageNet statistics
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
#: indices of AlexNet's feature layers after which LPIPS taps (relu1 .. relu5) and their widths
ALEX_TAPS = (1, 4, 7, 9, 11)
ALEX_WIDTHS = (64, 192, 384, 256, 256)


class AlexNetFeatures(nn.Module):
    """AlexNet's convolutional part with torchvision's module indices (``features.N``)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in ALEX_TAPS:
                out.append(x)
            if index == ALEX_TAPS[-1]:
                break
        return out


def _normalised(x: torch.Tensor) -> torch.Tensor:
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)


def lpips_from_taps(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor],
                    weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """The LPIPS distance per picture from the two pictures' taps and each tap's channel weights."""
    total = 0
    for fa, fb, w in zip(a, b, weights, strict=True):
        diff = (_normalised(fa) - _normalised(fb)).pow(2)
        total = total + (diff * w.view(1, -1, 1, 1)).sum(dim=1).mean(dim=(1, 2))
    return total


def to_signed(images: Sequence[Image.Image], size: tuple[int, int]) -> torch.Tensor:
    """Pictures resized to ``size`` as an NCHW tensor in [-1, 1]."""
    arrays = [np.asarray(im.convert("RGB").resize(size, Image.BICUBIC), dtype=np.float32) for im in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 127.5 - 1


class AlexLpips:
    """LPIPS with AlexNet, the published network and heads (loaded from local files)."""

    def __init__(self, alexnet: str | Path, heads: str | Path) -> None:
        self.net = AlexNetFeatures().eval()
        state = _load(alexnet, ALEXNET_SOURCE)
        self.net.load_state_dict({k: v for k, v in state.items() if k.startswith("features.")}, strict=True)
        heads_state = _load(heads, HEADS_SOURCE)
        try:
            self.weights = [heads_state[f"lin{i}.model.1.weight"].flatten() for i in range(len(ALEX_TAPS))]
        except KeyError as exc:
            raise ModelNotFoundError(f"{heads} holds no LPIPS linear heads (missing {exc}); "
                                     f"use {HEADS_FILE} from {HEADS_SOURCE}") from None
        self.shift = torch.tensor(SHIFT).view(1, 3, 1, 1)
        self.scale = torch.tensor(SCALE).view(1, 3, 1, 1)

    @torch.no_grad()
    def distance(self, a: Sequence[Image.Image], b: Sequence[Image.Image], size: int = 256) -> torch.Tensor:
        """LPIPS between each pair (pictures resized to ``size`` squared)."""
        x, y = ((to_signed(s, (size, size)) - self.shift) / self.scale for s in (a, b))
        return lpips_from_taps(self.net.taps(x), self.net.taps(y), self.weights)


class JudgeLpips:
    """The world's LPIPS stand-in: the judge's conv stages as taps, every channel weighing the same."""

    def __init__(self, judge) -> None:
        self.judge = judge
        stages = [m for m in judge.net.trunk if isinstance(m, nn.ReLU)][1::2]  # each stage's last ReLU
        self._ends = {id(m) for m in stages}
        self.weights = [torch.ones(m.out_channels) / m.out_channels
                        for m in judge.net.trunk if isinstance(m, nn.Conv2d)][1::2]

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for layer in self.judge.net.trunk:
            x = layer(x)
            if id(layer) in self._ends:
                out.append(x)
        return out

    @torch.no_grad()
    def distance(self, a: Sequence[Image.Image], b: Sequence[Image.Image]) -> torch.Tensor:
        x, y = self.judge.prepare(list(a)), self.judge.prepare(list(b))
        return lpips_from_taps(self._taps(x), self._taps(y), self.weights)


def _load(path: str | Path, source: str) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"LPIPS needs {path.name} and it is not at {path}; get it from {source}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torch.load of a damaged or foreign file raises many kinds
        raise ModelNotFoundError(f"cannot read {path} as a PyTorch weights file: {exc}") from exc
