"""Table 1: text-to-image on COCO-style captions: FID, IS, KID and CLIP-T per row.

Rows (each skipped when its model is not given):

- ``SD (short caption)``: the painter paints the caption as it is;
- ``LLMGA (SD)``: the brain refines the caption into a detailed prompt (as
  ``llmga generate`` does, sampling as it samples by default, so what the
  caption leaves open is filled as a user's request would fill it), the
  painter paints it;
- ``LLMGA (SD-ft)``: the same prompts painted by the stage-2 painter;
- rows a caller adds (:class:`Row`), e.g. the embedding-control baseline.

FID and KID compare the painted pictures with the references (the captions'
own pictures); IS is the painted set's; CLIP-T scores each picture against the
caption the user gave (not the refined prompt), so refining must keep what was asked.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from PIL import Image

from ..settings import PaintSettings, SamplingSettings
from . import metrics
from .runs import Run, cell, identity, table

@dataclass
class Row:
    """A row of the table: its name and how it paints a caption (``paint(caption, index)``)."""

    name: str
    paint: Callable[[str, int], Image.Image]
    key: dict = field(default_factory=dict)


@dataclass
class T2IConfig:
    """What Table 1 measures, with which models."""

    captions: str
    images: str | None = None
    painter: str | None = None
    stage2_painter: str | None = None
    brain: str | None = None
    n: int = 1000
    paint: PaintSettings = field(default_factory=lambda: PaintSettings(steps=50, guidance=7.5))
    seed: int = 0


def refined_prompt(run: Run, brain_spec: str, caption: str) -> str:
    """The brain's detailed prompt for ``caption``, as ``llmga generate`` gets it (cached in the run).

    A brain that answers in words instead (a world assistant asked for a thing
    outside its world) paints nothing for the user, so no figure can be made
    for it: that is an error naming the caption.
    """
    from ..assistant import Assistant
    from ..errors import BrainError

    sampling = SamplingSettings(max_new_tokens=run.sampling.max_new_tokens)
    result = Assistant(run.brain(brain_spec), None, sampling=sampling).generate(caption)
    if not result.reply.prompts:
        raise BrainError(f"{brain_spec} wrote no generation prompt for the caption {caption!r}; it answered "
                         f"{result.reply.text[:120]!r} (measure a world assistant on world captions: --world)")
    return result.reply.prompts[0]


def rows(config: T2IConfig, run: Run) -> list[Row]:
    """The standard rows whose models are given."""
    from ..painter.text_to_image import TextToImagePainter

    out = []
    painters: dict[str, TextToImagePainter] = {}

    def painter(spec: str) -> TextToImagePainter:
        if spec not in painters:
            painters[spec] = TextToImagePainter.load(spec)
        return painters[spec]

    def painting(spec: str, refine: bool) -> Callable[[str, int], Image.Image]:
        def paint(caption: str, index: int) -> Image.Image:
            prompt = refined_prompt(run, config.brain, caption) if refine else caption
            settings = replace(config.paint, seed=config.seed + index)
            return painter(spec).paint(prompt, settings).images[0]
        return paint

    if config.painter:
        out.append(Row("SD (short caption)", painting(config.painter, False), {"painter": identity(config.painter)}))
        if config.brain:
            out.append(Row("LLMGA (SD)", painting(config.painter, True),
                           {"painter": identity(config.painter), "brain": identity(config.brain)}))
    if config.stage2_painter and config.brain:
        out.append(Row("LLMGA (SD-ft)", painting(config.stage2_painter, True),
                       {"painter": identity(config.stage2_painter), "brain": identity(config.brain)}))
    return out


def embedding_row(name: str, model: str, config: T2IConfig, run: Run) -> Row:
    """A row for an embedding-control model: each caption asked as ``llmga generate`` asks it, the reply's
    ``[IMG]`` embeddings painted by the row's painter (loaded on first use)."""
    loaded: list = []

    def paint(caption: str, index: int) -> Image.Image:
        from ..assistant import Assistant
        from ..embedding.control import load_embedding_control
        from ..painter.suite import PainterSuite

        if not loaded:
            loaded.extend(load_embedding_control(model, PainterSuite.load(config.painter)))
        brain, painters = loaded
        settings = replace(config.paint, seed=config.seed + index)
        result = Assistant(brain, painters, sampling=run.sampling, paint=settings).generate(caption)
        return result.paintings[0].images[0]

    return Row(name, paint, {"control": identity(model), "painter": identity(config.painter)})


def run_t2i(config: T2IConfig, run: Run, extra: list[Row] = ()) -> dict:
    """Paint every row's pictures (resumable, sharded), then score them; returns the figures."""
    run.backbones.need("features", "classifier", "clip")
    samples = caption_sample(config.captions, config.images, config.n, config.seed)
    captions = [s.caption for s in samples]
    table_rows = rows(config, run) + list(extra)
    keys = {row.name: [{"table": "t2i", **row.key, "caption": c, "settings": config.paint.as_metadata(),
                        "seed": config.seed + i} for i, c in enumerate(captions)] for row in table_rows}
    work = [(row, i) for row in table_rows for i in range(len(captions))]
    for row, i in run.progress(run.shard(work), "table 1"):
        run.image(keys[row.name][i], lambda: row.paint(captions[i], i))
    run.wait()
    if not run.is_main:
        return {}
    reference = metrics.features([s.image for s in samples], run.backbones)
    figures = {"n": len(captions), "rows": {}}
    for row in table_rows:
        painted = [run.cached(k) for k in keys[row.name]]
        feats = metrics.features(painted, run.backbones)
        figures["rows"][row.name] = {
            "fid": metrics.fid_interval(reference, feats).as_dict(),
            "kid": metrics.bootstrap(metrics.kid_from_features, reference, feats, rounds=50).as_dict(),
            "is": metrics.bootstrap(metrics.is_from_logits, metrics.logits(painted, run.backbones)).as_dict(),
            "clip_t": metrics.mean_interval(metrics.clip_t(painted, captions, run.backbones)).as_dict(),
        }
    run.write("Table 1: text-to-image", markdown(figures), figures)
    return figures


def caption_sample(captions: str, images: str | None, n: int, seed: int) -> list:
    """A seeded sample of ``n`` usable captioned pictures; none usable is an error naming why."""
    from ..data.report import Problems
    from ..data.sources import open_source
    from ..errors import InvalidInputError

    problems = Problems("skip")
    samples = list(open_source(captions, images=images).samples(problems, show_progress=False))
    if not samples:
        reasons = "; ".join(f"{i}: {r}" for i, r in problems.skipped[:3])
        raise InvalidInputError(f"{captions} has no usable captioned picture ({reasons})")
    return random.Random(seed).sample(samples, min(n, len(samples)))


def markdown(figures: dict) -> str:
    """Table 1 in the paper's layout (figures with their 95% intervals)."""
    body = [(name, *(cell(metrics.Estimate(**r[m])) for m in ("fid", "is", "kid", "clip_t")))
            for name, r in figures["rows"].items()]
    return table(("Method", "FID↓", "IS↑", "KID↓", "CLIP-T↑"), body) + f"\n\n{figures['n']} captions."
