"""Table 2: instruction editing on a MagicBrush-layout test set: L1, L2, CLIP-I, DINO, CLIP-T.

Each edit runs as ``llmga edit`` does: the assistant reads the instruction
(and, if it can see, the source picture; else it is given the source's
description) and writes the target prompt, the editor inverts the source and
regenerates it. Every figure compares the edited picture with MagicBrush's
target picture (CLIP-T: with the target's description). A second row edits
with the true target description as the prompt, the editor's ceiling given a
perfect assistant.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from PIL import Image

from ..settings import PaintSettings
from . import metrics
from .runs import Run, cell, identity, table


@dataclass
class EditConfig:
    """What Table 2 measures, with which models."""

    data: str
    painter: str
    edit_painter: str | None = None
    brain: str | None = None
    n: int = 1000
    paint: PaintSettings = field(default_factory=lambda: PaintSettings(steps=50, guidance=7.5))
    seed: int = 0


def run_edit(config: EditConfig, run: Run) -> dict:
    """Edit every source picture (resumable, sharded), then score against the targets; returns the figures."""
    from ..assistant import Assistant
    from ..data.eval_sets import read_magicbrush
    from ..images import load_image
    from ..painter.suite import PainterSuite
    from ..tasks import TurnRequest

    run.backbones.need("clip", "dino")
    triples = read_magicbrush(config.data)[: config.n]
    suite = PainterSuite.load(config.painter, edit=config.edit_painter)
    editor = identity(config.edit_painter or config.painter)

    def assistant_edit(t, i: int) -> Image.Image:
        assistant = Assistant(run.brain(config.brain), suite, sampling=run.sampling, paint=replace(config.paint, seed=config.seed + i))
        result = assistant.chat(t.instruction, [load_image(t.source)],
                                request=TurnRequest(task="edit", source_prompt=t.source_description))
        return result.paintings[0].images[0] if result.paintings else load_image(t.source)

    def oracle_edit(t, i: int) -> Image.Image:
        from ..painter.edit import EditSettings

        settings = EditSettings.from_paint(replace(config.paint, seed=config.seed + i))
        return suite.edit.edit(load_image(t.source), t.source_description, t.target_description, settings).images[0]

    rows = {"true target description": (oracle_edit, {"editor": editor})}
    if config.brain:
        rows = {"LLMGA (assistant's prompt)": (assistant_edit, {"editor": editor, "brain": identity(config.brain)}),
                **rows}
    keys = {name: [{"table": "edit", **key, "id": t.id, "settings": config.paint.as_metadata(), "seed": config.seed + i}
                   for i, t in enumerate(triples)] for name, (_, key) in rows.items()}
    work = [(name, i) for name in rows for i in range(len(triples))]
    for name, i in run.progress(run.shard(work), "table 2"):
        run.image(keys[name][i], lambda: rows[name][0](triples[i], i))
    run.wait()
    if not run.is_main:
        return {}
    targets = [load_image(t.target) for t in triples]
    texts = [t.target_description for t in triples]
    figures = {"n": len(triples), "rows": {}}
    for name in rows:
        edited = [run.cached(k) for k in keys[name]]
        figures["rows"][name] = {
            "l1": metrics.mean_interval(metrics.l1(edited, targets)).as_dict(),
            "l2": metrics.mean_interval(metrics.l2(edited, targets)).as_dict(),
            "clip_i": metrics.mean_interval(metrics.clip_i(edited, targets, run.backbones)).as_dict(),
            "dino": metrics.mean_interval(metrics.dino(edited, targets, run.backbones)).as_dict(),
            "clip_t": metrics.mean_interval(metrics.clip_t(edited, texts, run.backbones)).as_dict(),
        }
    run.write("Table 2: instruction editing", markdown(figures), figures)
    return figures


def markdown(figures: dict) -> str:
    columns = ("l1", "l2", "clip_i", "dino", "clip_t")
    body = [(name, *(cell(metrics.Estimate(**r[c])) for c in columns)) for name, r in figures["rows"].items()]
    return table(("Method", "L1↓", "L2↓", "CLIP-I↑", "DINO↑", "CLIP-T↑"), body) + f"\n\n{figures['n']} edits."
