"""Reading the test sets the paper measures on, in their published layouts.

- MagicBrush (instruction editing, Table 2): ``DIR/edit_sessions.json`` maps
  each image id to its turns (``{"input", "mask", "instruction", "output"}``,
  file names), the files sit in ``DIR/images/<id>/``, and
  ``DIR/global_descriptions.json`` maps ``id -> file -> description`` (MagicBrush's
  captions of every input and output, what CLIP-T is scored against).
- Places (inpainting and outpainting, Table 3): a folder of pictures (any
  depth, e.g. ``val_256/``), taken in sorted order.

COCO captions (Table 1) are read by :mod:`llmga.data.sources`. Every reader
refuses a missing piece by name before any work starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class EditTriple:
    """One edit of a MagicBrush session: the source picture, the instruction, the target and their descriptions."""

    id: str
    source: Path
    instruction: str
    target: Path
    source_description: str
    target_description: str


def read_magicbrush(folder: str | Path, turns: str = "first") -> list[EditTriple]:
    """The edits of a MagicBrush-layout folder: each session's first turn, or (``turns="all"``) every turn."""
    folder = Path(folder).expanduser()
    sessions = _json(folder / "edit_sessions.json", "MagicBrush's edit sessions")
    descriptions = _json(folder / "global_descriptions.json", "MagicBrush's global descriptions")
    if turns not in ("first", "all"):
        raise InvalidInputError(f"turns must be 'first' or 'all', got {turns!r}")
    triples = []
    for image_id in sorted(sessions):
        steps = sessions[image_id] if turns == "all" else sessions[image_id][:1]
        for k, step in enumerate(steps):
            try:
                source, target = (folder / "images" / image_id / step[key] for key in ("input", "output"))
                said = descriptions.get(image_id, {})
                triples.append(EditTriple(f"{image_id}-{k + 1}", source, step["instruction"], target,
                                          said.get(step["input"], ""), said.get(step["output"], "")))
            except (KeyError, TypeError) as exc:
                raise InvalidInputError(f"edit session {image_id} turn {k + 1} in {folder / 'edit_sessions.json'} "
                                        f"lacks {exc}") from None
    missing = [str(p) for t in triples for p in (t.source, t.target) if not p.is_file()]
    if missing:
        raise InvalidInputError(f"{len(missing)} pictures named by {folder / 'edit_sessions.json'} are missing, "
                                f"e.g. {missing[0]}")
    return triples


def read_image_folder(folder: str | Path) -> list[Path]:
    """The pictures under ``folder`` (Places layout), sorted."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InvalidInputError(f"image folder {folder} does not exist")
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise InvalidInputError(f"{folder} holds no pictures ({', '.join(IMAGE_SUFFIXES)})")
    return found


def _json(path: Path, what: str):
    if not path.is_file():
        raise InvalidInputError(f"{path} ({what}) does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid JSON: {exc}") from exc
