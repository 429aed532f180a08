"""The miniature world's test sets, written in the layouts of the paper's (``llmga world export``).

So the same runners measure real models on COCO, MagicBrush and Places and the
world's models in miniature, the world writes its own sets in those layouts:

- ``coco``: ``captions.json`` (COCO captions format, the short caption of each
  scene: "a red star"; file names relative to the folder) and ``images/`` (its
  renders, the FID reference);
- ``magicbrush``: ``edit_sessions.json``, ``images/<id>/<id>-input.png``,
  ``-output1.png``, ``-mask1.png`` (the cells or background the edit changes) and
  ``global_descriptions.json`` (each picture's detailed caption);
- ``places``: ``images/`` of rendered scenes with 0 to 3 objects.

Every set is drawn from a seed stream that no training set uses (``eval-…``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

from ..world.captions import short_caption
from ..world.edits import sample_edit
from ..world.regions import footprint
from ..world.render import render
from ..world.scene import POSITIONS, Scene, sample_scene

LAYOUTS = ("coco", "magicbrush", "places")


def export(layout: str, out: str | Path, n: int, seed: int = 0, size: int = 32) -> Path:
    """Write ``n`` items of the world in ``layout`` to ``out``; return the folder."""
    writers = {"coco": write_coco, "magicbrush": write_magicbrush, "places": write_places}
    if layout not in writers:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    writers[layout](out, n, seed, size)
    return out


def _rng(layout: str, seed: int, index: int) -> random.Random:
    return random.Random(f"eval-{layout}/{seed}/{index}")


def write_coco(out: Path, n: int, seed: int, size: int) -> None:
    images, annotations = [], []
    for i in range(n):
        scene = sample_scene(_rng("coco", seed, i), 1)
        name = f"images/{i:06d}.png"
        render(scene, size).save(out / name)
        images.append({"id": i, "file_name": name})
        annotations.append({"id": i, "image_id": i, "caption": short_caption(scene)})
    (out / "captions.json").write_text(json.dumps({"images": images, "annotations": annotations}, indent=1))


def write_magicbrush(out: Path, n: int, seed: int, size: int) -> None:
    sessions, descriptions = {}, {}
    for i in range(n):
        rng = _rng("magicbrush", seed, i)
        pair = sample_edit(sample_scene(rng, 2), rng, max_objects=3)
        image_id = f"{i:06d}"
        folder = out / "images" / image_id
        folder.mkdir(parents=True, exist_ok=True)
        files = {"input": f"{image_id}-input.png", "output": f"{image_id}-output1.png",
                 "mask": f"{image_id}-mask1.png"}
        render(pair.source, size).save(folder / files["input"])
        render(pair.target, size).save(folder / files["output"])
        edit_mask(pair.source, pair.target, size).save(folder / files["mask"])
        sessions[image_id] = [{**files, "instruction": pair.instruction}]
        descriptions[image_id] = {files["input"]: pair.source_caption, files["output"]: pair.target_caption}
    (out / "edit_sessions.json").write_text(json.dumps(sessions, indent=1))
    (out / "global_descriptions.json").write_text(json.dumps(descriptions, indent=1))


def write_places(out: Path, n: int, seed: int, size: int) -> None:
    for i in range(n):
        render(sample_scene(_rng("places", seed, i), 3, min_objects=0), size).save(out / "images" / f"{i:06d}.png")


def edit_mask(source: Scene, target: Scene, size: int) -> Image.Image:
    """Where an edit changes the picture: the changed cells, or all of it when the background changes."""
    if source.background != target.background:
        return Image.new("L", (size, size), 255)
    changed = [p for p in POSITIONS if source.object_at(p) != target.object_at(p)]
    hit = np.zeros((size, size), dtype=bool)
    for position in changed:
        hit |= footprint(position, size)
    return Image.fromarray((hit * 255).astype(np.uint8))
