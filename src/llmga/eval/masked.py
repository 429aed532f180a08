"""Table 3: inpainting and outpainting on a Places-layout folder, narrow and wide masks: FID and LPIPS.

Masks are drawn per picture from ``random.Random(f"{seed}/{kind}/{width}/{index}")``,
so every run and every row sees the same ones:

- inpainting, narrow: free-form brush strokes (1-4 strokes 5-15% of the short
  side wide); wide: 1-3 rectangles each 15-50% of the picture's sides (the
  thin/thick split of LaMa's evaluation masks, drawn with llmga's own mask helpers);
- outpainting, narrow: borders of 10-25% of the side on 1-4 sides; wide: 25-40%
  (the border widths of llmga's stage-1 outpainting data).

Outpainting is measured as the paper does, inside the picture's own frame:
the borders are hidden and painted back. Rows: the painter with an empty
prompt (``SD``), and with the prompt the assistant imagines for the whole
picture from the masked view, asked as the stage-1 inpainting set asks (``LLMGA (SD)``, and with a stage-2 inpainting
painter ``LLMGA (SD-ft)``). LPIPS compares each result with its original; FID
the set of results with the set of originals.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from PIL import Image

from .. import masks
from ..settings import PaintSettings
from . import metrics
from .runs import Run, cell, identity, table

KINDS = (("outpaint", "narrow"), ("outpaint", "wide"), ("inpaint", "narrow"), ("inpaint", "wide"))


@dataclass
class MaskedConfig:
    """What Table 3 measures, with which models."""

    images: str
    painter: str
    stage2_painter: str | None = None
    brain: str | None = None
    n: int = 1000
    paint: PaintSettings = field(default_factory=lambda: PaintSettings(steps=50, guidance=7.5))
    seed: int = 0
    kinds: tuple[tuple[str, str], ...] = KINDS


def draw_mask(kind: str, width: str, size: tuple[int, int], seed: int, index: int) -> Image.Image:
    """The deterministic evaluation mask of one picture (see the module docstring)."""
    rng = random.Random(f"{seed}/{kind}/{width}/{index}")
    if kind == "outpaint":
        return masks.outpaint_mask(size, masks.random_outpaint_sides(rng, width))
    return masks.brush_mask(size, rng) if width == "narrow" else masks.box_mask(size, rng)


def imagined_prompt(run: Run, brain_spec: str, picture: Image.Image, mask: Image.Image, kind: str) -> str | None:
    """The assistant's prompt for the whole picture, seen with its masked part hidden (None if it wrote none)."""
    from ..assistant import Assistant
    from ..tasks import masked_view

    from ..data.templates import INPAINT, OUTPAINT

    assistant = Assistant(run.brain(brain_spec), None, sampling=run.sampling)
    if not assistant.brain.multimodal:
        return None
    request = (INPAINT if kind == "inpaint" else OUTPAINT).pick(random.Random(kind))  # as stage 1 asks
    result = assistant.chat(request, [masked_view(picture, mask)])
    return result.reply.prompts[0] if result.reply.prompts else None


def paint_all(config: MaskedConfig, run: Run) -> tuple[list, dict]:
    """Inpaint/outpaint every picture per row and mask kind (resumable, sharded).

    Returns the originals' paths and, per ``(row, kind, width)``, the cache keys of the painted pictures
    (read them with :meth:`Run.cached` after this returns, on the main process).
    """
    from ..data.eval_sets import read_image_folder
    from ..images import load_image
    from ..painter.inpaint import InpaintPainter

    paths = read_image_folder(config.images)[: config.n]
    painters: dict[str, InpaintPainter] = {}

    def painter(spec: str) -> InpaintPainter:
        if spec not in painters:
            painters[spec] = InpaintPainter.load(spec)
        return painters[spec]

    def painting(spec: str, assisted: bool) -> Callable[[Image.Image, Image.Image, str, int], Image.Image]:
        def paint(picture: Image.Image, mask: Image.Image, kind: str, index: int) -> Image.Image:
            prompt = (imagined_prompt(run, config.brain, picture, mask, kind) or "") if assisted else ""
            return painter(spec).paint(picture, mask, prompt, replace(config.paint, seed=config.seed + index)).images[0]
        return paint

    rows = {"SD": (painting(config.painter, False), {"painter": identity(config.painter)})}
    if config.brain:
        rows["LLMGA (SD)"] = (painting(config.painter, True), {"painter": identity(config.painter),
                                                               "brain": identity(config.brain)})
        if config.stage2_painter:
            rows["LLMGA (SD-ft)"] = (painting(config.stage2_painter, True), {"painter": identity(config.stage2_painter),
                                                                             "brain": identity(config.brain)})
    keys = {(name, kind, width): [{"table": "masked", **key, "kind": kind, "width": width, "image": str(p),
                                   "settings": config.paint.as_metadata(), "seed": config.seed + i}
                                  for i, p in enumerate(paths)]
            for name, (_, key) in rows.items() for kind, width in config.kinds}
    work = [(name, kind, width, i) for (name, kind, width) in keys for i in range(len(paths))]
    for name, kind, width, i in run.progress(run.shard(work), "inpainting and outpainting"):
        def make(name=name, kind=kind, width=width, i=i):
            picture = load_image(paths[i])
            return rows[name][0](picture, draw_mask(kind, width, picture.size, config.seed, i), kind, i)
        run.image(keys[(name, kind, width)][i], make)
    run.wait()
    return paths, keys


def run_masked(config: MaskedConfig, run: Run) -> dict:
    """Table 3: paint (:func:`paint_all`), then score every row and mask kind; returns the figures."""
    from ..images import load_image

    run.backbones.need("features", "lpips")
    paths, keys = paint_all(config, run)
    if not run.is_main:
        return {}
    originals = [load_image(p) for p in paths]
    reference = metrics.features(originals, run.backbones)
    figures = {"n": len(paths), "rows": {}}
    for (name, kind, width), row_keys in keys.items():
        painted = [run.cached(k) for k in row_keys]
        figures["rows"].setdefault(name, {})[f"{kind}/{width}"] = {
            "fid": metrics.fid_interval(reference,
                                     metrics.features(painted, run.backbones)).as_dict(),
            "lpips": metrics.mean_interval(metrics.lpips(painted, originals, run.backbones)).as_dict(),
        }
    run.write("Table 3: outpainting and inpainting", markdown(figures), figures)
    return figures


def markdown(figures: dict) -> str:
    columns = [f"{k}/{w}" for k, w in KINDS if any(f"{k}/{w}" in r for r in figures["rows"].values())]
    header = ["Method"] + [f"{c} {m}" for c in columns for m in ("FID↓", "LPIPS↓")]
    body = [(name, *(cell(metrics.Estimate(**r[c][m])) for c in columns for m in ("fid", "lpips")))
            for name, r in figures["rows"].items()]
    return table(header, body) + f"\n\n{figures['n']} pictures per mask kind."
