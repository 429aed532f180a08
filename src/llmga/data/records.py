"""LLaVA-format conversation records, and the files of a built data set.

A record is ``{"id", "image" (optional, relative path), "conversations": [...]}``
where conversations alternate ``{"from": "human", ...}`` and ``{"from": "gpt", ...}``
and, when there is an image, the first human value starts with ``"<image>\\n"``.
A built data set is a folder holding ``data.json`` (the list of records) and
``images/`` (the files the records name, relative to the folder).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ..atomic import write_atomically
from ..errors import InvalidInputError
from ..images import write_png

IMAGE_TOKEN = "<image>"
DATA_FILE = "data.json"
IMAGES_DIR = "images"
#: record fields that hold file paths relative to the data set's folder
PATH_KEYS = ("image", "mask")

Record = dict[str, Any]


def make_record(
    record_id: str, turns: Sequence[tuple[str, str]], image: str | None = None, **extra: Any
) -> Record:
    """A record from (human, gpt) turns; with ``image`` the first human turn gets the image token."""
    conversations = []
    for index, (human, gpt) in enumerate(turns):
        if index == 0 and image is not None:
            human = f"{IMAGE_TOKEN}\n{human}"
        conversations += [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]
    record: Record = {"id": record_id}
    if image is not None:
        record["image"] = image
    record["conversations"] = conversations
    record.update(extra)
    return record


def validate_record(record: Any) -> None:
    """Raise :class:`InvalidInputError` naming the record if it is not a valid LLaVA-format record."""
    name = record.get("id", "?") if isinstance(record, dict) else "?"

    def bad(why: str) -> InvalidInputError:
        return InvalidInputError(f"record {name}: {why}")

    if not isinstance(record, dict) or "id" not in record:
        raise bad("not an object with an 'id'")
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns or len(turns) % 2:
        raise bad("'conversations' must be a non-empty list of human/gpt pairs")
    for index, turn in enumerate(turns):
        expected = "human" if index % 2 == 0 else "gpt"
        if (
            not isinstance(turn, dict)
            or turn.get("from") != expected
            or not isinstance(turn.get("value"), str)
        ):
            raise bad(f"turn {index} must be {{'from': '{expected}', 'value': <text>}}")
    if record.get("train_on", "all") not in ("all", "last"):
        raise bad("'train_on' must be 'all' (every assistant turn is trained) or 'last'")
    has_token = any(IMAGE_TOKEN in turn["value"] for turn in turns)
    if "image" in record:
        if not isinstance(record["image"], str) or not record["image"]:
            raise bad("'image' must be a relative path")
        if not turns[0]["value"].startswith(IMAGE_TOKEN):
            raise bad(f"has an image but the first human turn does not start with {IMAGE_TOKEN}")
    elif has_token:
        raise bad(f"uses {IMAGE_TOKEN} but names no image")


def write_records(records: Iterable[Record], path: str | Path) -> Path:
    """Validate ``records`` and write them as one JSON list (atomically: a crash leaves no half file)."""
    records = list(records)
    for record in records:
        validate_record(record)
    return write_atomically(path, json.dumps(records, ensure_ascii=False, indent=1).encode("utf-8"))


def read_records(path: str | Path) -> list[Record]:
    """Read a JSON list of records (not validated: see :func:`validate_record`)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"data file {path} does not exist")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(records, list):
        raise InvalidInputError(f"{path} must hold a JSON list of records, found {type(records).__name__}")
    return records


def safe_name(text: str) -> str:
    """``text`` made safe as a file name (letters, digits, ``._-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "sample"


def save_image(image: Image.Image, root: Path, name: str, metadata: dict[str, Any] | None = None) -> str:
    """Save ``image`` as ``root/images/<name>.png`` (``metadata`` as PNG text); return the relative path."""
    relative = f"{IMAGES_DIR}/{safe_name(name)}.png"
    write_png(image, root / relative, metadata)
    return relative


def place_image(source: Path, root: Path, name: str) -> str:
    """Put the file ``source`` at ``root/images/<name><ext>`` (hard link, else copy); return the path."""
    relative = f"{IMAGES_DIR}/{safe_name(name)}{source.suffix.lower()}"
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        if target.samefile(source):
            return relative
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return relative
