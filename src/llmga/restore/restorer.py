"""Restoring a painted picture with the kept region as reference, and loading restorers.

:meth:`Restorer.restore` takes the painted picture (the painter's raw output is
best: it shows the colour shift over the kept region too), the original and the
mask (white: painted), runs the stage-2 network and composites its output back,
``out * M + (1 - M) * I_GT``, so every kept pixel is the original's own. Inputs
are padded (reflect) to the network's multiple (32, 16, 8 for ×1, ×2, ×4) and
cropped back. A picture larger than ``tile`` pixels a side is restored in
overlapping tiles, blended with linear ramps across the overlaps; only tiles
that touch the mask are run, with a progress bar in a terminal (or a
``progress(done, total)`` callback).

A restorer is a folder written by :func:`save_restorer` (``config.json`` and
``model.safetensors``), a checkpoint saved by the released code (a ``.pth``
whose ``params_ema`` or ``params`` holds the stage-2 state dict: its
configuration is read from the weights' shapes), or a shipped name
(``world-restore``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .. import registry
from ..errors import InvalidInputError, ModelNotFoundError
from ..images import as_rgb
from ..masks import load_mask
from .network import NetworkConfig, StageTwo, infer_config, network_input, unique_state, with_aliases

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
FORMAT = "llmga-diffrir"
Progress = Callable[[int, int], None]


def to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB picture as a ``(1, 3, h, w)`` float tensor in [0, 1]."""
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]


def to_image(x: torch.Tensor) -> Image.Image:
    """A ``(1, 3, h, w)`` tensor in [0, 1] as an RGB picture (rounded to 8 bits)."""
    return Image.fromarray((x[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())


def pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """``x`` padded at the bottom and right to a multiple of ``multiple`` (reflected; edge pixels repeated where
    the picture is too small to reflect); returns the padded tensor and the padding (bottom, right)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if not (pad_h or pad_w):
        return x, (0, 0)
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (pad_h, pad_w)


class Restorer:
    """A stage-2 DiffRIR (or DiffIR) network ready to restore pictures.

    ``tile`` is the largest input side run at once (a multiple of the network's),
    ``overlap`` how much neighbouring tiles share; ``seed`` fixes the prior
    estimator's starting noise, so a restoration repeats exactly.
    """

    def __init__(self, net: StageTwo, name: str = "", tile: int = 512, overlap: int = 64, seed: int = 0) -> None:
        self.net = net.eval()
        self.config: NetworkConfig = net.config
        self.name = name or "DiffRIR"
        multiple = self.config.multiple
        self.tile = max(multiple, tile // multiple * multiple)
        self.overlap = min(overlap // multiple * multiple, self.tile - multiple)
        self.seed = seed

    @property
    def scale(self) -> int:
        return self.config.scale

    @classmethod
    def load(cls, spec: str | Path, **kwargs: Any) -> Restorer:
        """Load a restorer folder, a released checkpoint file, or a shipped restorer by name."""
        shipped = registry.shipped(str(spec), registry.RESTORER)
        path = Path(shipped or spec).expanduser()
        kwargs.setdefault("name", str(spec))
        if path.is_dir():
            return cls(_load_folder(path), **kwargs)
        if path.is_file():
            return cls(_load_file(path), **kwargs)
        names = ", ".join(registry.names(registry.RESTORER)) or "none"
        raise ModelNotFoundError(f"no restorer at {path}: give a folder made by `llmga train restore`, a released "
                                 f"DiffRIR checkpoint (.pth), or a shipped name ({names})")

    def describe(self) -> str:
        c = self.config
        kind = "DiffRIR" if c.reference else "DiffIR (no reference)"
        params = sum(p.numel() for p in self.net.parameters())
        return f"{self.name} ({kind} ×{c.scale}, dim {c.dim}, {params / 1e6:.2f}M parameters)"

    def check_scale(self, scale: int) -> None:
        """Refuse a restorer of another scale than the caller restores at."""
        if self.scale != scale:
            raise InvalidInputError(f"the restorer {self.name} is a ×{self.scale} checkpoint but this restores at "
                                    f"×{scale}; give a ×{scale} restorer")

    @torch.no_grad()
    def restore(self, painted: Image.Image, reference: Image.Image, mask: Any,
                progress: Progress | None = None) -> Image.Image:
        """``painted`` restored with ``reference``'s kept region, composited back through ``mask`` (white: painted).

        ``reference`` and ``mask`` have the output's size: ``painted``'s times the scale.
        """
        painted = as_rgb(painted)
        size = (painted.width * self.scale, painted.height * self.scale)
        reference = as_rgb(reference)
        if reference.size != size:
            raise InvalidInputError(
                f"the reference is {reference.width}x{reference.height} but the restored picture is "
                f"{size[0]}x{size[1]}" + (f" (×{self.scale} the painted {painted.width}x{painted.height})"
                                          if self.scale > 1 else "")
                + "; give the original the painting was made from")
        binary = load_mask(mask, size)
        m = to_tensor(binary.convert("RGB"))[:, :1]
        truth = to_tensor(reference)
        out = self.restore_tensor(to_tensor(painted), truth, m, progress)
        return to_image(out * m + (1 - m) * truth)

    def restore_tensor(self, lq: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor,
                       progress: Progress | None = None) -> torch.Tensor:
        """The network's output for a ``(1, 3, h, w)`` picture (not composited), tile by tile where it is large."""
        s, (h, w) = self.scale, lq.shape[-2:]
        reference = truth * (1 - mask) if self.config.reference else None
        boxes = [b for b in _tiles(h, w, self.tile, self.overlap)
                 if mask[..., b[0] * s:b[1] * s, b[2] * s:b[3] * s].any()]
        total = torch.zeros(1, 3, h * s, w * s)
        weight = torch.zeros(1, 1, h * s, w * s)
        if progress is None and len(boxes) > 1:  # a bar in a terminal (tqdm stays silent elsewhere)
            from tqdm.auto import tqdm

            bar = tqdm(total=len(boxes), desc="restoring", unit="tile", disable=None, leave=False)
            progress = lambda done, total: bar.update(done - bar.n)  # noqa: E731
        for done, (top, bottom, left, right) in enumerate(boxes, 1):
            part = lq[..., top:bottom, left:right]
            ref = None if reference is None else reference[..., top * s:bottom * s, left * s:right * s]
            out = self._run(part, ref)
            ramp = _ramp(bottom - top, right - left, (top, bottom, left, right), (h, w), self.overlap)
            ramp = F.interpolate(ramp, scale_factor=s, mode="nearest") if s > 1 else ramp
            total[..., top * s:bottom * s, left * s:right * s] += out * ramp
            weight[..., top * s:bottom * s, left * s:right * s] += ramp
            if progress is not None:
                progress(done, len(boxes))
        upsampled = F.interpolate(lq, scale_factor=s, mode="bicubic").clamp(0, 1) if s > 1 else lq
        return torch.where(weight > 0, total / weight.clamp(min=1e-8), upsampled)

    def _run(self, lq: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        h, w = lq.shape[-2:]
        padded, _ = pad_to(network_input(lq, reference, self.scale), self.config.multiple)
        generator = torch.Generator().manual_seed(self.seed)
        out, _ = self.net(padded, generator=generator)
        return out[..., : h * self.scale, : w * self.scale].clamp(0, 1)


def _tiles(h: int, w: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(top, bottom, left, right) of overlapping tiles covering an ``h`` x ``w`` picture."""

    def starts(length: int) -> list[int]:
        if length <= tile:
            return [0]
        stride = tile - overlap
        out = list(range(0, length - tile, stride))
        return out + [length - tile]

    return [(y, min(y + tile, h), x, min(x + tile, w)) for y in starts(h) for x in starts(w)]


def _ramp(th: int, tw: int, box: tuple[int, int, int, int], size: tuple[int, int], overlap: int) -> torch.Tensor:
    """Blending weights of a tile: rising linearly across ``overlap`` pixels on each side that has a neighbour."""

    def axis(length: int, start: int, end: int, total: int) -> torch.Tensor:
        ramp = torch.ones(length)
        if overlap > 0:
            rise = (torch.arange(length, dtype=torch.float) + 1) / (overlap + 1)
            if start > 0:
                ramp = torch.minimum(ramp, rise)
            if end < total:
                ramp = torch.minimum(ramp, rise.flip(0))
        return ramp

    top, bottom, left, right = box
    return (axis(th, top, bottom, size[0])[:, None] * axis(tw, left, right, size[1])[None, :])[None, None]


# -- saving and loading ----------------------------------------------------------------------


def save_restorer(net: StageTwo, out: str | Path, dtype: torch.dtype = torch.float16,
                  card: dict | None = None) -> Path:
    """Write ``net`` as a restorer folder: ``config.json`` (with ``card``'s facts) and ``model.safetensors``."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in unique_state(net).items()}
    save_file(state, str(out / WEIGHTS_NAME), metadata={"format": FORMAT})
    (out / CONFIG_NAME).write_text(json.dumps({"format": FORMAT, **net.config.to_dict(), **(card or {})}, indent=2)
                                   + "\n")
    return out


def _build(config: NetworkConfig, state: dict[str, torch.Tensor], source: Path) -> StageTwo:
    net = StageTwo(config)
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InvalidInputError(f"{source} does not fit its restorer configuration: {first}") from None
    return net.eval()


def _load_folder(path: Path) -> StageTwo:
    from safetensors.torch import load_file

    config_file, weights = path / CONFIG_NAME, path / WEIGHTS_NAME
    if not config_file.is_file() or not weights.is_file():
        raise ModelNotFoundError(f"{path} is not a restorer folder: it needs {CONFIG_NAME} and {WEIGHTS_NAME}")
    config = NetworkConfig.from_dict(json.loads(config_file.read_text()))
    return _build(config, with_aliases(load_file(str(weights))), path)


def _load_file(path: Path) -> StageTwo:
    """A released checkpoint (``.pth``: ``params_ema``, else ``params``) or a bare state dict (``.safetensors``)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged or foreign file raises many kinds
            raise InvalidInputError(f"cannot read {path} as a PyTorch checkpoint: {exc}") from None
        state = loaded.get("params_ema", loaded.get("params", loaded)) if isinstance(loaded, dict) else None
        if not isinstance(state, dict):
            raise InvalidInputError(f"{path} holds no state dict (expected params_ema or params)")
    if not any(k.startswith("diffusion.model.") for k in state):
        state = with_aliases(state)
    return _build(infer_config(state), state, path)
