"""Reading user images and saving painted ones with their settings."""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from ..errors import InvalidInputError

METADATA_KEY = "llmga"


def load_image(path: str | Path) -> Image.Image:
    """Open an image file as RGB (see :func:`llmga.painter.image_input.open_image` for odd and huge images)."""
    from .image_input import open_image

    return open_image(Path(path).expanduser())


def png_bytes(image: Image.Image, metadata: dict[str, Any] | None = None) -> bytes:
    """``image`` as PNG bytes carrying ``metadata``: JSON under ``llmga``, the prompt line under ``parameters``."""
    info = None
    if metadata:
        info = PngImagePlugin.PngInfo()
        info.add_itxt(METADATA_KEY, json.dumps(metadata, sort_keys=True, default=str))
        info.add_itxt("parameters", _parameters_line(metadata))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def save_png(image: Image.Image, out_dir: str | Path, metadata: dict[str, Any]) -> Path:
    """Save ``image`` as a PNG in ``out_dir`` carrying ``metadata`` as text; return its path.

    The metadata is stored as JSON under the ``llmga`` key and the prompt also
    under ``parameters`` (what other Stable Diffusion tools read). The file name
    holds the time, the seed and a hash of the pixels, so nothing is overwritten.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = png_bytes(image, metadata)
    digest = hashlib.sha256(data).hexdigest()[:10]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"{stamp}-s{metadata.get('seed', 0)}-{digest}.png"
    tmp = path.with_suffix(".png.partial")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The llmga metadata saved in a PNG by :func:`save_png`."""
    with Image.open(path) as image:
        text = image.text.get(METADATA_KEY) if hasattr(image, "text") else None
    if text is None:
        raise InvalidInputError(f"{path} carries no llmga metadata")
    return json.loads(text)


def _parameters_line(meta: dict[str, Any]) -> str:
    lines = [str(meta.get("prompt", ""))]
    if meta.get("negative_prompt"):
        lines.append(f"Negative prompt: {meta['negative_prompt']}")
    lines.append(
        ", ".join(
            f"{label}: {meta[key]}"
            for label, key in (("Steps", "steps"), ("CFG scale", "guidance"), ("Seed", "seed"), ("Model", "model"))
            if meta.get(key) is not None
        )
    )
    return "\n".join(lines)
