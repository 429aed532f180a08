"""Table 5: the same request asked again over turns 1..N of one conversation: FID and CLIP-T per turn.

For each caption one conversation asks "Generate an image: CAPTION" N times
(with ``interleave``, a plain question comes between the repeats). The
paper's claim: pictures made through embeddings decay as the conversation
grows, pictures made through language prompts do not. Each control is a
factory of something that takes turns like :class:`~llmga.assistant.Assistant`
(``chat(text)`` returning paintings); language prompts are the default row,
embedding-control rows (:func:`embedding_control`) are added by the caller. In the world, the judge also
says per turn whether the picture shows the colour and shape asked for.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from PIL import Image

from ..data.refine_demo import QA_CAPITALS
from ..settings import PaintSettings
from . import metrics
from .runs import Run, cell, identity, table
from .t2i import caption_sample

REQUEST = "Generate an image: {caption}"


@dataclass
class TurnsConfig:
    """What Table 5 measures."""

    captions: str
    images: str | None = None
    painter: str | None = None
    brain: str | None = None
    n: int = 200
    turns: int = 5
    interleave: bool = False
    paint: PaintSettings = field(default_factory=lambda: PaintSettings(steps=50, guidance=7.5))
    seed: int = 0


def language_control(config: TurnsConfig, run: Run) -> Callable[[int], Any]:
    """The language-prompt assistant (a new conversation per call; ``index`` seeds its paintings)."""
    from ..assistant import Assistant
    from ..painter.text_to_image import TextToImagePainter

    painter = TextToImagePainter.load(config.painter)
    return lambda index: Assistant(run.brain(config.brain), painter, sampling=run.sampling,
                                   paint=replace(config.paint, seed=config.seed + index))


def embedding_control(model: str, config: TurnsConfig, run: Run) -> tuple[Callable[[int], Any], dict]:
    """A row for an embedding-control model (LLMGA-Embedding, GILL-style): the same assistant loop, its
    ``[IMG]`` embeddings painted by the same painter; and the row's cache key."""
    from ..assistant import Assistant
    from ..embedding.control import load_embedding_control
    from ..painter.suite import PainterSuite

    brain, painters = load_embedding_control(model, PainterSuite.load(config.painter))
    factory = lambda index: Assistant(brain, painters, sampling=run.sampling,  # noqa: E731
                                      paint=replace(config.paint, seed=config.seed + index))
    return factory, {"control": identity(model), "painter": identity(config.painter)}


def run_turns(config: TurnsConfig, run: Run, extra: dict[str, tuple[Callable[[int], Any], dict]] | None = None) -> dict:
    """Hold each conversation (resumable per conversation, sharded), then score each turn; returns the figures."""
    run.backbones.need("features", "clip")
    samples = caption_sample(config.captions, config.images, config.n, config.seed)
    captions = [s.caption for s in samples]
    controls: dict[str, tuple[Callable[[int], Any], dict]] = {}
    if config.painter and config.brain:
        controls["LLMGA (language prompt)"] = (language_control(config, run),
                                               {"painter": identity(config.painter), "brain": identity(config.brain)})
    controls.update(extra or {})
    keys = {name: [[{"table": "turns", **key, "caption": c, "turn": t, "interleave": config.interleave,
                     "settings": config.paint.as_metadata(), "seed": config.seed + i}
                    for t in range(1, config.turns + 1)] for i, c in enumerate(captions)]
            for name, (_, key) in controls.items()}
    work = [(name, i) for name in controls for i in range(len(captions))]
    for name, i in run.progress(run.shard(work), "table 5"):
        if not all(run.image_path(k).is_file() for k in keys[name][i]):
            _converse(controls[name][0](i), captions[i], keys[name][i], config, run)
    run.wait()
    if not run.is_main:
        return {}
    reference = metrics.features([s.image for s in samples], run.backbones)
    figures = {"n": len(captions), "turns": config.turns, "interleave": config.interleave, "rows": {}}
    for name in controls:
        per_turn = []
        for t in range(config.turns):
            painted = [run.cached(keys[name][i][t]) for i in range(len(captions))]
            turn = {"fid": metrics.fid_interval(reference,
                                             metrics.features(painted, run.backbones)).as_dict(),
                    "clip_t": metrics.mean_interval(metrics.clip_t(painted, captions, run.backbones)).as_dict()}
            if run.backbones.name == "world":
                turn["success"] = metrics.share_interval(world_success(painted, captions)).as_dict()
            per_turn.append(turn)
        figures["rows"][name] = per_turn
    run.write("Table 5: the same request over conversation turns", markdown(figures), figures)
    return figures


def _converse(assistant: Any, caption: str, turn_keys: list[dict], config: TurnsConfig, run: Run) -> None:
    """Ask for ``caption`` once per turn in one conversation; cache each turn's picture (grey if none was painted)."""
    rng = random.Random(caption)
    for key in turn_keys:
        if config.interleave and key["turn"] > 1:
            assistant.chat(f"What is the capital of {rng.choice(sorted(QA_CAPITALS))}?")
        result = assistant.chat(REQUEST.format(caption=caption))
        picture = result.paintings[-1].images[0] if result.paintings else Image.new("RGB", (32, 32), (128, 128, 128))
        if not run.image_path(key).is_file():
            run.image(key, lambda picture=picture: picture)


def world_success(pictures: list[Image.Image], captions: list[str]) -> list[bool]:
    """Whether the judge reads each picture as showing the colour–shape objects its short caption names."""
    from ..world.judge import Judge
    from ..world.requests import SHORT, Request, shows
    from ..world.scene import COLOURS, POSITIONS, SHAPES, Background, Obj, Scene

    pattern = re.compile(rf"\b({'|'.join(COLOURS)}) ({'|'.join(SHAPES)})\b")
    readings = Judge.load().read(pictures)
    out = []
    for read, caption in zip(readings, captions):
        asked = [Obj(shape, colour, "small", POSITIONS[k]) for k, (colour, shape) in
                 enumerate(pattern.findall(caption.lower()))]
        out.append(bool(asked) and shows(read, Request(Scene(tuple(asked), Background("day", "grass")), SHORT)))
    return out


def markdown(figures: dict) -> str:
    turns = range(1, figures["turns"] + 1)
    header = ["Control"] + [f"turn {t} FID↓" for t in turns] + [f"turn {t} CLIP-T↑" for t in turns]
    body = [(name, *(cell(metrics.Estimate(**r[t - 1]["fid"]), 2) for t in turns),
             *(cell(metrics.Estimate(**r[t - 1]["clip_t"]), 3) for t in turns)) for name, r in figures["rows"].items()]
    text = table(header, body)
    if any("success" in r[0] for r in figures["rows"].values()):
        text += "\n\nWhole-request success (judge):\n\n" + table(
            ["Control"] + [f"turn {t}" for t in turns],
            [(name, *(cell(metrics.Estimate(**r[t - 1]["success"]), 2) for t in turns))
             for name, r in figures["rows"].items()])
    between = "with a plain question between the repeats" if figures["interleave"] else "asked back to back"
    return text + f"\n\n{figures['n']} conversations of {figures['turns']} turns, {between}."
