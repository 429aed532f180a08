"""The networks the metrics see pictures through: real ones loaded from local files, or the world's.

Real backbones (nothing is downloaded; each is named by an argument or an
environment variable, and a missing one fails at once naming the file and its
published source):

- ``inception`` (``LLMGA_INCEPTION``): the FID Inception network as TorchScript,
  ``inception-2015-12-05.pt``, the file StyleGAN2-ADA and clean-fid publish (the
  TensorFlow FID weights). torchmetrics' own Inception comes from torch-fidelity,
  whose package import needs torchvision, which does not import beside this
  torch; the TorchScript file needs torch alone. It gives FID/KID's 2048
  pool features and the 1008 class probabilities of the Inception Score.
- ``clip`` (``LLMGA_CLIP``): a transformers CLIP directory (ViT-L/14 or B/32): CLIP-I, CLIP-T.
- ``dino`` (``LLMGA_DINO``): a transformers DINO ViT directory (ViT-S/16 or B/16): its CLS token.
- ``lpips`` (``LLMGA_LPIPS``): a folder holding torchvision's ``alexnet-owt-7be5be79.pth`` and
  the LPIPS heads ``alex.pth`` (:mod:`llmga.eval.perceptual`).

World backbones stand in offline: the judge's features for FID/KID and DINO,
its colour × shape reading of the most certain cell for the Inception Score,
its conv stages for LPIPS, and the world CLIP (shipped as ``world-clip``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from .. import registry
from ..errors import ModelNotFoundError
from .perceptual import ALEXNET_FILE, HEADS_FILE, AlexLpips, JudgeLpips

INCEPTION_FILE = "inception-2015-12-05.pt"
SOURCES = {
    "inception": f"https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/{INCEPTION_FILE}",
    "clip": "a transformers CLIP directory, e.g. openai/clip-vit-large-patch14 saved with save_pretrained",
    "dino": "a transformers DINO ViT directory, e.g. facebook/dino-vits16 saved with save_pretrained",
    "lpips": f"a folder with {ALEXNET_FILE} (torchvision) and {HEADS_FILE} (the lpips package's v0.1 heads)",
}
ENVIRONMENT = {name: f"LLMGA_{name.upper()}" for name in SOURCES}


class ImageFeatures(Protocol):
    """Pictures to a feature matrix ``(n, d)``."""

    def features(self, images: Sequence[Image.Image]) -> torch.Tensor: ...


class Classifier(Protocol):
    """Pictures to class logits ``(n, k)`` (the Inception Score's classifier)."""

    def logits(self, images: Sequence[Image.Image]) -> torch.Tensor: ...


class PerceptualDistance(Protocol):
    """Pairs of pictures to a distance per pair (LPIPS)."""

    def distance(self, a: Sequence[Image.Image], b: Sequence[Image.Image]) -> torch.Tensor: ...


class TextImage(Protocol):
    """Pictures and texts to unit vectors in one space (CLIP)."""

    def image_features(self, images: Sequence[Image.Image]) -> torch.Tensor: ...

    def text_features(self, texts: Sequence[str]) -> torch.Tensor: ...


@dataclass
class Backbones:
    """What each metric sees pictures through; None where it is not configured."""

    name: str
    features: ImageFeatures | None = None
    classifier: Classifier | None = None
    clip: TextImage | None = None
    dino: ImageFeatures | None = None
    lpips: PerceptualDistance | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def need(self, *names: str) -> None:
        """Refuse at once if a backbone the measurement needs is not configured."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ModelNotFoundError(
                f"the {self.name} backbones lack {', '.join(missing)}; "
                + "; ".join(f"set {ENVIRONMENT[_CONFIG_OF[n]]} to {SOURCES[_CONFIG_OF[n]]}" for n in missing))


_CONFIG_OF = {"features": "inception", "classifier": "inception", "clip": "clip", "dino": "dino", "lpips": "lpips"}


class Inception:
    """The FID Inception network as TorchScript (``inception-2015-12-05.pt``)."""

    def __init__(self, path: str | Path, batch_size: int = 32) -> None:
        path = Path(path)
        if not path.is_file():
            raise ModelNotFoundError(f"the FID Inception network {INCEPTION_FILE} is not at {path}; "
                                     f"get it from {SOURCES['inception']}")
        try:
            self.model = torch.jit.load(str(path), map_location="cpu").eval()
        except RuntimeError as exc:
            raise ModelNotFoundError(f"{path} is not a TorchScript Inception network: {exc}") from exc
        self.batch_size = batch_size

    def _run(self, images: Sequence[Image.Image], **kwargs) -> torch.Tensor:
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.from_numpy(np.stack([np.asarray(im.convert("RGB").resize((299, 299), Image.BICUBIC))
                                               for im in images[start : start + self.batch_size]]))
            with torch.no_grad():
                out.append(self.model(batch.permute(0, 3, 1, 2).float(), **kwargs).float())
        return torch.cat(out)

    def features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return self._run(images, return_features=True)

    def logits(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return self._run(images).clamp_min(1e-12).log()  # the network gives class probabilities


class Clip:
    """A transformers CLIP model with its tokenizer and image processor (a local directory)."""

    def __init__(self, path: str | Path) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        path = _directory(path, "clip")
        self.model = CLIPModel.from_pretrained(path, local_files_only=True).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=True, backend="pil")

    @torch.no_grad()
    def image_features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        pixels = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt").pixel_values
        return _unit(_as_tensor(self.model.get_image_features(pixel_values=pixels)))

    @torch.no_grad()
    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        return _unit(_as_tensor(self.model.get_text_features(**tokens)))


class Dino:
    """A transformers DINO ViT (a local directory): the CLS token of its last layer."""

    def __init__(self, path: str | Path) -> None:
        from transformers import AutoImageProcessor, AutoModel

        path = _directory(path, "dino")
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=True, backend="pil")

    @torch.no_grad()
    def features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        pixels = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt").pixel_values
        return self.model(pixel_values=pixels).last_hidden_state[:, 0]


class JudgeBackbone:
    """The world judge as a feature extractor and a classifier (colour × shape of its most certain cell)."""

    def __init__(self, judge=None) -> None:
        from ..world.judge import Judge

        self.judge = judge or Judge.load()

    def features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return self.judge.features(list(images))

    def logits(self, images: Sequence[Image.Image]) -> torch.Tensor:
        out = self.judge.logits(list(images))
        best = out["occupied"].argmax(dim=1)  # the cell the judge is surest holds an object
        rows = torch.arange(len(best))
        colour, shape = out["colour"][rows, best], out["shape"][rows, best]
        return (colour.log_softmax(-1)[:, :, None] + shape.log_softmax(-1)[:, None, :]).flatten(1)


def real_backbones(inception: str | Path | None = None, clip: str | Path | None = None,
                   dino: str | Path | None = None, lpips: str | Path | None = None) -> Backbones:
    """The published backbones from local files, each from its argument or its environment variable."""
    given = {"inception": inception, "clip": clip, "dino": dino, "lpips": lpips}
    paths = {k: v if v is not None else os.environ.get(ENVIRONMENT[k]) for k, v in given.items()}
    out = Backbones("real", sources={k: str(v) for k, v in paths.items() if v})
    if paths["inception"]:
        out.features = out.classifier = Inception(paths["inception"])
    if paths["clip"]:
        out.clip = Clip(paths["clip"])
    if paths["dino"]:
        out.dino = Dino(paths["dino"])
    if paths["lpips"]:
        folder = Path(paths["lpips"])
        out.lpips = AlexLpips(folder / ALEXNET_FILE, _heads(folder))
    return out


def world_backbones(judge=None) -> Backbones:
    """The miniature world's stand-ins: the judge (FID/KID, IS, DINO, LPIPS) and the world CLIP (CLIP-I/T)."""
    backbone = JudgeBackbone(judge)
    clip_dir = registry.shipped("world-clip", registry.CLIP)
    return Backbones("world", features=backbone, classifier=backbone, dino=backbone, lpips=JudgeLpips(backbone.judge),
                     clip=Clip(clip_dir), sources={"judge": "world-judge", "clip": "world-clip"})


def _heads(folder: Path) -> Path:
    """The LPIPS heads: in the folder, else from an installed lpips package (only its weights are read)."""
    import importlib.util

    if (folder / HEADS_FILE).is_file():
        return folder / HEADS_FILE
    spec = importlib.util.find_spec("lpips")
    if spec and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / HEADS_FILE
    return folder / HEADS_FILE


def _directory(path: str | Path, name: str) -> Path:
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"{path} is not a {name} model directory (no config.json); use {SOURCES[name]}")
    return path


def _as_tensor(output) -> torch.Tensor:
    """transformers 5 may return a model output where older versions returned the tensor."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
