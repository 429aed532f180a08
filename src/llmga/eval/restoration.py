"""Table 4: restoring outpainted pictures (the seams between painted and kept regions): FID, LPIPS, seam.

The outpaintings are Table 3's (wide borders, the assistant's prompt when a
brain is given, else the plain painter's), taken from the same cache. Rows:
``none`` (as painted), then each restorer given (the paper's DiffIR without a
reference, DiffRIR with the reference, DiffRIR with the reference and colour
degradation): each restores the painted picture with the kept region as its
reference and the result is composited back through the mask. Besides FID
and LPIPS against the originals, :func:`seam_step` measures what restoration
is for: the colour and brightness step across the mask's edge, against the same
step in the original.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from PIL import Image, ImageFilter

from . import metrics
from .masked import MaskedConfig, draw_mask, paint_all
from .runs import Run, cell, table


class Restorer(Protocol):
    """Restores a painted picture given the original's kept region as reference (composited back by the mask)."""

    def restore(self, painted: Image.Image, reference: Image.Image, mask: Image.Image) -> Image.Image: ...


@dataclass
class RestoreConfig:
    """Which outpaintings to restore (Table 3's settings), with which restorers."""

    masked: MaskedConfig
    kind: str = "outpaint"
    width: str = "wide"


def seam_step(picture: Image.Image, original: Image.Image, mask: Image.Image, band: int = 2) -> tuple[float, float]:
    """(colour step, brightness step): how much more the mean RGB and luminance jump across the mask's edge
    in ``picture`` than in ``original``, comparing the ``band`` pixels just inside with those just outside."""
    hidden = np.asarray(mask.convert("L")) >= 128
    grown = np.asarray(mask.convert("L").filter(ImageFilter.MaxFilter(2 * band + 1))) >= 128
    shrunk = np.asarray(mask.convert("L").filter(ImageFilter.MinFilter(2 * band + 1))) >= 128
    inside, outside = hidden & ~shrunk, grown & ~hidden
    if not inside.any() or not outside.any():
        return 0.0, 0.0

    def steps(image: Image.Image) -> tuple[np.ndarray, float]:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255
        luma = rgb @ np.array([0.299, 0.587, 0.114])
        return rgb[inside].mean(0) - rgb[outside].mean(0), luma[inside].mean() - luma[outside].mean()

    (colour_p, light_p), (colour_o, light_o) = steps(picture), steps(original)
    return float(np.abs(colour_p - colour_o).mean()), float(abs(light_p - light_o))


def run_restore(config: RestoreConfig, run: Run, restorers: dict[str, Restorer]) -> dict:
    """Restore Table 3's outpaintings with each restorer (cached) and score every row; returns the figures."""
    from ..images import load_image

    run.backbones.need("features", "lpips")
    masked = replace(config.masked, kinds=((config.kind, config.width),))
    paths, keys = paint_all(masked, run)
    row = "LLMGA (SD)" if masked.brain else "SD"
    painted_keys = keys[(row, config.kind, config.width)]
    work = [(name, i) for name in restorers for i in range(len(paths))]
    for name, i in run.progress(run.shard(work), "table 4"):
        def make(name=name, i=i):
            original = load_image(paths[i])
            mask = draw_mask(config.kind, config.width, original.size, masked.seed, i)
            return restorers[name].restore(run.cached(painted_keys[i]), original, mask)
        run.image({**painted_keys[i], "restorer": name}, make)
    run.wait()
    if not run.is_main:
        return {}
    originals = [load_image(p) for p in paths]
    mask_of = [draw_mask(config.kind, config.width, o.size, masked.seed, i) for i, o in enumerate(originals)]
    reference = metrics.features(originals, run.backbones)
    figures = {"n": len(paths), "outpaintings": row, "masks": f"{config.kind}/{config.width}", "rows": {}}
    for name in ["none", *restorers]:
        pictures = [run.cached(k if name == "none" else {**k, "restorer": name}) for k in painted_keys]
        seams = [seam_step(p, o, m) for p, o, m in zip(pictures, originals, mask_of)]
        figures["rows"][name] = {
            "fid": metrics.fid_interval(reference,
                                     metrics.features(pictures, run.backbones)).as_dict(),
            "lpips": metrics.mean_interval(metrics.lpips(pictures, originals, run.backbones)).as_dict(),
            "seam_colour": metrics.mean_interval([s[0] for s in seams]).as_dict(),
            "seam_brightness": metrics.mean_interval([s[1] for s in seams]).as_dict(),
        }
    run.write("Table 4: restoring outpaintings", markdown(figures), figures)
    return figures


def markdown(figures: dict) -> str:
    columns = ("fid", "lpips", "seam_colour", "seam_brightness")
    body = [(name, *(cell(metrics.Estimate(**r[c])) for c in columns)) for name, r in figures["rows"].items()]
    return (table(("Restorer", "FID↓", "LPIPS↓", "colour step↓", "brightness step↓"), body)
            + f"\n\n{figures['n']} outpaintings ({figures['masks']} masks, row {figures['outpaintings']} of Table 3).")
