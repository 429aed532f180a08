"""Helpers shared by the data tests: scripted brains and tiny image–caption sources."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from llmga.testing.doubles import ScriptedBrain

COLOURS = [(200, 30, 30), (30, 160, 40), (40, 60, 200), (220, 200, 40), (120, 40, 160), (20, 180, 180)]


def user_text(messages) -> str:
    """The text of the last user message (string or parts)."""
    content = messages[-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def describing_brain(**kwargs) -> ScriptedBrain:
    """A captioner whose description repeats the caption it was given, plus its image size."""

    def reply(request):
        caption = user_text(request.messages).split('"')[1]
        images = request.images
        size = f" ({images[0].size[0]}x{images[0].size[1]})" if images else ""
        return f"Description: A detailed view: {caption}{size} Soft light.<|im_end|>"

    return ScriptedBrain(reply, **kwargs)


def make_image(path: Path, index: int, size=(32, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, COLOURS[index % len(COLOURS)]).save(path)
    return path


def tiny_coco(root: Path, n: int = 4, broken: bool = False) -> tuple[Path, Path]:
    """A COCO captions file and image folder with ``n`` good images (two captions each).

    With ``broken``: a corrupt image file, an image with no caption and a missing file are added.
    """
    images_dir = root / "train"
    images, annotations = [], []
    for i in range(n):
        name = f"{i:012d}.jpg"
        make_image(images_dir / name, i)
        images.append({"id": i, "file_name": name})
        annotations += [
            {
                "id": 10 * i,
                "image_id": i,
                "caption": f"A small {['red', 'green', 'blue', 'yellow'][i % 4]} thing {i}.",
            },
            {"id": 10 * i + 1, "image_id": i, "caption": f"  a thing number {i} on a table  "},
        ]
    if broken:
        (images_dir / "corrupt.jpg").write_bytes(b"not an image at all")
        make_image(images_dir / "nocaption.jpg", 0)
        images += [
            {"id": 100, "file_name": "corrupt.jpg"},
            {"id": 101, "file_name": "nocaption.jpg"},
            {"id": 102, "file_name": "missing.jpg"},
        ]
        annotations += [
            {"id": 1000, "image_id": 100, "caption": "A broken file."},
            {"id": 1002, "image_id": 102, "caption": "A missing file."},
        ]
    captions = root / "captions.json"
    captions.write_text(json.dumps({"images": images, "annotations": annotations}))
    return captions, images_dir


def tiny_jsonl(root: Path, rows: list) -> Path:
    """A JSONL file of ``rows`` (dicts, or raw strings written as they are) beside its images."""
    path = root / "pairs.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path
