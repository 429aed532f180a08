"""The judge: a small CNN that reads a picture of the world back into a scene.

Design: the world places objects in a 3x3 grid, so the judge predicts per
cell, not per object. The picture is resized to ``input_size`` (48: a multiple
of 3, so every cell is 16x16 pixels), four conv stages bring it to 6x6, and a
2x2 average pool gives exactly one feature vector per cell. One head, shared
by all cells, says whether the cell holds an object and its colour, shape and
size; a second head reads the time of day and terrain from the whole picture.
Per-cell heads map one-to-one onto the scene (no matching of predicted to true
objects, as per-object heads would need), read any number of objects, and
share what they learn across positions.

It is trained (:mod:`llmga.train.world_judge`) on scenes rendered on the fly
from a seed (at 32 and 64 pixels, so it reads either; other sizes are
resized), most of them lightly degraded by :func:`augment` (shifts, blur,
noise, colour jitter) so that it also reads imperfect paintings, and saved as
``model.safetensors`` with a ``config.json``; :mod:`llmga.eval.judge_accuracy`
measures it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .. import registry
from ..errors import ModelNotFoundError
from .scene import (
    COLOURS,
    GRID,
    POSITIONS,
    SHAPES,
    SIZES,
    TERRAINS,
    TIMES,
    Background,
    Obj,
    Scene,
    WorldError,
)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: Where the judge shipped with the package lives.
ASSET_DIR = registry.shipped("world-judge", registry.JUDGE)
CELLS = GRID * GRID


@dataclass
class JudgeConfig:
    """What a judge is: its network, and the world it was trained on."""

    input_size: int = 48
    widths: tuple[int, ...] = (24, 48, 96, 128)
    shapes: tuple[str, ...] = SHAPES
    colours: tuple[str, ...] = COLOURS
    sizes: tuple[str, ...] = SIZES
    times: tuple[str, ...] = TIMES
    terrains: tuple[str, ...] = TERRAINS
    positions: tuple[str, ...] = POSITIONS
    render_sizes: tuple[int, ...] = (32, 64)
    max_objects: int = 4
    training: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> JudgeConfig:
        data = json.loads(text)
        known = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in data.items()
            if k in cls.__dataclass_fields__
        }
        return cls(**known)

    def check_world(self) -> None:
        """Refuse a judge whose vocabulary differs from this version of the world."""
        for name, ours in (
            ("shapes", SHAPES),
            ("colours", COLOURS),
            ("sizes", SIZES),
            ("times", TIMES),
            ("terrains", TERRAINS),
            ("positions", POSITIONS),
        ):
            if tuple(getattr(self, name)) != ours:
                raise WorldError(
                    f"this judge was trained on other {name} ({getattr(self, name)}) than the "
                    f"world's {ours}; retrain it with `llmga train judge`"
                )


class JudgeNet(nn.Module):
    """Conv stages down to a 2x2-per-cell map; a shared per-cell head and a whole-picture background head."""

    def __init__(self, config: JudgeConfig):
        super().__init__()
        step = GRID * 2 ** (len(config.widths) - 1)
        if config.input_size % step:
            raise WorldError(
                f"judge input size must be a multiple of {step} (whole pixels per cell in every "
                f"stage), got {config.input_size}"
            )
        layers: list[nn.Module] = []
        cin = 3
        for i, width in enumerate(config.widths):
            stride = 1 if i == 0 else 2
            layers += [
                nn.Conv2d(cin, width, 3, stride, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, 1, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            cin = width
        self.trunk = nn.Sequential(*layers)
        self.splits = (1, len(config.colours), len(config.shapes), len(config.sizes))
        self.cell_head = nn.Sequential(
            nn.Conv2d(cin, cin, 1), nn.ReLU(inplace=True), nn.Conv2d(cin, sum(self.splits), 1)
        )
        self.bg_splits = (len(config.times), len(config.terrains))
        self.bg_head = nn.Linear(cin, sum(self.bg_splits))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-cell feature map, ``(n, channels, 3, 3)``."""
        return F.adaptive_avg_pool2d(self.trunk(x), GRID)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        cells = self.features(x)
        occupied, colour, shape, size = (
            self.cell_head(cells).flatten(2).transpose(1, 2).split(self.splits, dim=-1)
        )
        time_, terrain = self.bg_head(cells.mean(dim=(2, 3))).split(self.bg_splits, dim=-1)
        return {
            "occupied": occupied.squeeze(-1),
            "colour": colour,
            "shape": shape,
            "size": size,
            "time": time_,
            "terrain": terrain,
        }


def to_tensor(images: Any) -> torch.Tensor:
    """Pictures as a float ``(n, 3, h, w)`` tensor in [0, 1].

    Takes a PIL image, a list of them, a uint8 array ``(h, w, 3)`` or
    ``(n, h, w, 3)``, or a float tensor ``(n, 3, h, w)`` in [0, 1].
    """
    if isinstance(images, torch.Tensor):
        return images.float() if images.dim() == 4 else images.float()[None]
    if isinstance(images, Image.Image):
        images = [images]
    if isinstance(images, np.ndarray):
        array = images[None] if images.ndim == 3 else images
    else:
        array = np.stack([np.asarray(im.convert("RGB")) for im in images])
    if array.ndim != 4 or array.shape[-1] != 3:
        raise WorldError(f"expected RGB pictures, got an array of shape {array.shape}")
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array).permute(0, 3, 1, 2).float() / 255.0


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur with one sigma per picture (sigma 0 leaves it as it is)."""
    n, c, h, w = x.shape
    taps = torch.arange(-2, 3, dtype=x.dtype)
    kernel = torch.exp(-(taps[None] ** 2) / (2 * sigma.clamp(min=1e-3)[:, None] ** 2))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, 0)  # (n*c, 5)
    flat = x.reshape(1, n * c, h, w)
    flat = F.conv2d(F.pad(flat, (2, 2, 0, 0), mode="replicate"), kernel[:, None, None, :], groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, 2, 2), mode="replicate"), kernel[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, h, w)


def augment(x: torch.Tensor, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Light degradations a painting may show: a shift of up to a pixel, blur, colour jitter and noise."""
    n = x.shape[0]

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, *shape, generator=generator)

    def sometimes(p: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator) < p).float()

    shifts = torch.randint(-1, 2, (n, 2), generator=generator) * (torch.rand(n, 1, generator=generator) < 0.5)
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    h, w = x.shape[2:]
    x = torch.stack(
        [padded[i, :, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for i, (dy, dx) in enumerate(shifts.tolist())]
    )
    x = _blur(x, sometimes(0.5) * uniform(0.3, 0.9 * strength))
    gain = uniform(1 - 0.1 * strength, 1 + 0.1 * strength, 1, 1, 1) * uniform(
        1 - 0.05 * strength, 1 + 0.05 * strength, 3, 1, 1
    )
    x = x * gain + uniform(-0.04 * strength, 0.04 * strength, 1, 1, 1)
    noise = (sometimes(0.6) * uniform(0, 0.06 * strength))[:, None, None, None]
    x = x + noise * torch.randn(x.shape, generator=generator)
    return x.clamp(0, 1)


def scene_targets(scenes: Sequence[Scene], config: JudgeConfig) -> dict[str, torch.Tensor]:
    """Training targets: per cell occupancy, colour, shape and size (-100 where empty); time and terrain."""
    n = len(scenes)
    out = {"occupied": torch.zeros(n, CELLS)}
    for name in ("colour", "shape", "size"):
        out[name] = torch.full((n, CELLS), -100, dtype=torch.long)
    for i, scene in enumerate(scenes):
        for obj in scene.objects:
            out["occupied"][i, obj.cell] = 1.0
            out["colour"][i, obj.cell] = config.colours.index(obj.colour)
            out["shape"][i, obj.cell] = config.shapes.index(obj.shape)
            out["size"][i, obj.cell] = config.sizes.index(obj.size)
    out["time"] = torch.tensor([config.times.index(s.background.time) for s in scenes])
    out["terrain"] = torch.tensor([config.terrains.index(s.background.terrain) for s in scenes])
    return out


class Judge:
    """A trained judge: ``read`` pictures into scenes, or into attributes with confidences."""

    def __init__(self, net: JudgeNet, config: JudgeConfig):
        self.net = net.eval()
        self.config = config

    @classmethod
    def new(cls, config: JudgeConfig | None = None, seed: int = 0) -> Judge:
        """An untrained judge."""
        torch.manual_seed(seed)
        config = config or JudgeConfig()
        return cls(JudgeNet(config), config)

    @classmethod
    def load(cls, directory: str | Path | None = None) -> Judge:
        """The judge saved in ``directory`` (default: the one shipped with llmga)."""
        from safetensors.torch import load_file

        directory = Path(directory) if directory is not None else ASSET_DIR
        config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        if not (config_path.is_file() and weights_path.is_file()):
            raise ModelNotFoundError(
                f"no judge in {directory} (needs {CONFIG_NAME} and {WEIGHTS_NAME}); "
                f"train one with `llmga train judge --out {directory}`"
            )
        config = JudgeConfig.from_json(config_path.read_text())
        config.check_world()
        net = JudgeNet(config)
        net.load_state_dict(load_file(str(weights_path)))
        return cls(net, config)

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.contiguous() for k, v in self.net.state_dict().items()}, str(directory / WEIGHTS_NAME)
        )
        (directory / CONFIG_NAME).write_text(self.config.to_json())
        return directory

    def prepare(self, images: Any) -> torch.Tensor:
        """Pictures in any form :func:`to_tensor` takes (a list may mix sizes), resized for the network."""
        size = self.config.input_size
        if isinstance(images, (list, tuple)):
            parts = [self.prepare(image) for image in images]
            return torch.cat(parts) if parts else torch.zeros(0, 3, size, size)
        x = to_tensor(images)
        return (
            x
            if x.shape[-2:] == (size, size)
            else F.interpolate(x, (size, size), mode="bilinear", antialias=True, align_corners=False)
        )

    @torch.no_grad()
    def logits(self, images: Any, batch_size: int = 256) -> dict[str, torch.Tensor]:
        """Raw head outputs for pictures (run in batches)."""
        x = self.prepare(images)
        parts = [self.net(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]} if parts else {}

    @torch.no_grad()
    def features(self, images: Any, batch_size: int = 256) -> torch.Tensor:
        """One feature vector per picture (its cells' features, flattened), e.g. for a distance."""
        x = self.prepare(images)
        parts = [self.net.features(x[i : i + batch_size]).flatten(1) for i in range(0, len(x), batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, GRID * GRID * self.config.widths[-1])

    def read(self, images: Any) -> list[Scene]:
        """The scene each picture shows."""
        return [self._scene(d) for d in self.read_attributes(images)]

    def read_attributes(self, images: Any) -> list[dict[str, Any]]:
        """Per picture: time and terrain, and per position the object read there, each with its confidence."""
        out = self.logits(images)
        if not out:
            return []
        c = self.config
        probs = {k: (v.sigmoid() if k == "occupied" else v.softmax(-1)) for k, v in out.items()}
        readings = []
        for i in range(len(probs["time"])):
            reading: dict[str, Any] = {}
            for name, vocab in (("time", c.times), ("terrain", c.terrains)):
                p, j = probs[name][i].max(-1)
                reading[name], reading[f"{name}_p"] = vocab[j], round(float(p), 4)
            cells = {}
            for cell, position in enumerate(c.positions):
                entry: dict[str, Any] = {"object_p": round(float(probs["occupied"][i, cell]), 4)}
                for name, vocab in (("colour", c.colours), ("shape", c.shapes), ("size", c.sizes)):
                    p, j = probs[name][i, cell].max(-1)
                    entry[name], entry[f"{name}_p"] = vocab[j], round(float(p), 4)
                cells[position] = entry
            reading["cells"] = cells
            readings.append(reading)
        return readings

    @staticmethod
    def _scene(reading: dict[str, Any]) -> Scene:
        objects = tuple(
            Obj(e["shape"], e["colour"], e["size"], position)
            for position, e in reading["cells"].items()
            if e["object_p"] >= 0.5
        )
        return Scene(objects, Background(reading["time"], reading["terrain"]))
