"""Images in and out: opening user images robustly, saving painted ones with their settings.

:func:`open_image` is the one door for pictures coming from users (photos to
edit, control maps, masks); :func:`load_image` opens a path through it.
:func:`write_png` and :func:`save_png` write PNGs that carry their prompt and
settings as text (:func:`read_metadata` reads them back). What :func:`open_image`
does with odd inputs, so callers need not:

- **transparency** (RGBA, LA, palette or colour-key transparency): composited on
  white, the usual page colour, so transparent areas never turn black;
- **16-bit** images (``I;16*``): scaled by 1/257 (65535 becomes 255), not
  clipped; **32-bit integer** (``I``): used as is within 0..255, scaled as
  16-bit within 0..65535, else stretched from its minimum to its maximum;
  **32-bit float** (``F``): multiplied by 255 within 0..1, else stretched from
  its minimum to its maximum (depth maps); NaN and infinities become 0;
- **CMYK** and other colour modes: converted to RGB, through the embedded ICC
  profile where there is one (to sRGB);
- **EXIF orientation**: applied, so a phone photo is upright and sized as seen;
- **animated** images (GIF, APNG, WebP): the first frame, with an info log;
- **huge** images: downscaled, aspect kept, to at most ``max_pixels`` pixels and
  ``max_side`` pixels a side, with a logged warning (JPEGs decode at a reduced
  scale, which is fast and small); above ``refuse_pixels``, with a side over
  ``refuse_side`` or a longer side over ``refuse_aspect`` times the shorter
  (all read from the header, before any decoding) the image is refused:
  decoding and resizing such shapes costs far more memory than their pixels;
- **formats**: only those named in ``formats`` are opened (by default the
  common photo and drawing formats; never EPS, which would run Ghostscript);
- **unreadable** input (missing file, not an image, truncated or corrupt data,
  a decompression bomb): :class:`~llmga.errors.InvalidInputError` naming the
  file and the problem. Truncated images are never padded out with grey.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import struct
import tempfile
import time
import warnings
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError

from .atomic import write_atomically
from .errors import InvalidInputError

log = logging.getLogger(__name__)

ImageSource = str | os.PathLike[str] | bytes | bytearray | BinaryIO | Image.Image
ImageLike = Image.Image | str | Path

#: images with more pixels are downscaled to fit (SD paints at 512-1024 px a side)
MAX_PIXELS = 2048 * 2048
#: images with a longer side are downscaled to fit
MAX_SIDE = 4096
#: images with more pixels are refused unread (Pillow's own decompression-bomb limit)
REFUSE_PIXELS = 2 * 89_478_485
#: images with a longer side, or a longer side over this many times the shorter, are refused unread
REFUSE_SIDE = 32768
REFUSE_ASPECT = 64.0
#: the formats opened unless a caller names others
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP")

WHITE = (255, 255, 255)
#: the PNG text key holding llmga's JSON metadata
METADATA_KEY = "llmga"
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
# what a damaged file raises somewhere inside Pillow's decoders
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


def open_image(
    source: ImageSource,
    *,
    max_pixels: int = MAX_PIXELS,
    max_side: int = MAX_SIDE,
    refuse_pixels: int = REFUSE_PIXELS,
    refuse_side: int = REFUSE_SIDE,
    refuse_aspect: float = REFUSE_ASPECT,
    formats: tuple[str, ...] = FORMATS,
    name: str | None = None,
) -> Image.Image:
    """Open ``source`` (path, bytes, binary file or PIL image) as a new RGB image.

    See the module docstring for what happens to transparent, 16-bit, float,
    CMYK, rotated, animated, huge and oddly shaped images. ``name`` labels the
    image in messages (default: the path, or a description of the bytes).
    Raises :class:`~llmga.errors.InvalidInputError` for anything that is not a
    readable image of ``formats`` within the refusal limits.
    """
    name = name or _describe(source)
    if isinstance(source, Image.Image):
        check_shape(source.size, name, refuse_pixels, refuse_side, refuse_aspect)
        return _prepare(source, name, max_pixels, max_side)
    with _open(source, name, formats) as image:
        check_shape(image.size, name, refuse_pixels, refuse_side, refuse_aspect)
        return _prepare(image, name, max_pixels, max_side)


def check_shape(size: tuple[int, int], name: str, max_pixels: int = REFUSE_PIXELS, max_side: int = REFUSE_SIDE,
                max_aspect: float = REFUSE_ASPECT) -> None:
    """Refuse a size (read from a header) whose decoding would cost too much: too many pixels, too long
    a side, or too thin; :class:`~llmga.errors.InvalidInputError` names the limit."""
    width, height = size
    if width * height > max_pixels:
        raise InvalidInputError(
            f"{name} is {width}x{height} ({width * height / 1e6:.0f} megapixels); images over "
            f"{max_pixels / 1e6:.0f} megapixels are refused. Downscale it first."
        )
    if max(size) > max_side:
        raise InvalidInputError(f"{name} is {width}x{height}; images over {max_side} pixels a side are refused")
    if min(size) < 1 or max(size) / min(size) > max_aspect:
        raise InvalidInputError(
            f"{name} is {width}x{height}; images longer than {max_aspect:g} times their width (or height) "
            "are refused")


def fit_size(
    size: tuple[int, int], max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE
) -> tuple[int, int]:
    """The largest size with the aspect of ``size`` within both limits (``size`` itself if it fits)."""
    width, height = size
    scale = min(1.0, math.sqrt(max_pixels / (width * height)), max_side / max(width, height))
    if scale >= 1.0:
        return size
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def size_multiple_of(size: tuple[int, int], multiple: int = 8) -> tuple[int, int]:
    """``size`` with each side rounded to the nearest multiple of ``multiple`` (at least one multiple)."""
    width, height = (max(multiple, round(side / multiple) * multiple) for side in size)
    return width, height


def to_multiple_of(image: Image.Image, multiple: int = 8) -> Image.Image:
    """``image`` resized so both sides are multiples of ``multiple`` (itself if they already are)."""
    size = size_multiple_of(image.size, multiple)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


# --------------------------------------------------------------------------
# files and metadata


def load_image(path: str | Path) -> Image.Image:
    """Open an image file as RGB through :func:`open_image`."""
    return open_image(Path(path).expanduser())


def as_rgb(image: ImageLike) -> Image.Image:
    """An RGB copy of ``image`` (a PIL image of any mode, or a file path)."""
    if isinstance(image, (str, Path)):
        return load_image(image)
    if not isinstance(image, Image.Image):
        raise InvalidInputError(f"expected a PIL image or a file path, got {type(image).__name__}")
    return image.convert("RGB")


def png_bytes(image: Image.Image, metadata: dict[str, Any] | None = None) -> bytes:
    """``image`` as PNG bytes carrying ``metadata``: JSON under ``llmga``, and where it has a prompt, the
    prompt line under ``parameters`` (what other Stable Diffusion tools read)."""
    info = None
    if metadata:
        info = PngImagePlugin.PngInfo()
        info.add_itxt(METADATA_KEY, json.dumps(metadata, sort_keys=True, default=str, ensure_ascii=False))
        if "prompt" in metadata:
            info.add_itxt("parameters", _parameters_line(metadata))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def write_png(image: Image.Image, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``image`` to ``path`` as a PNG carrying ``metadata`` (see :func:`png_bytes`), atomically."""
    return write_atomically(Path(path), png_bytes(image, metadata))


def save_png(image: Image.Image, out_dir: str | Path, metadata: dict[str, Any]) -> Path:
    """Save ``image`` as a new PNG in ``out_dir`` carrying ``metadata`` as text; return its path.

    The file name holds the time, the seed and a hash of the pixels, so nothing is overwritten.
    """
    data = png_bytes(image, metadata)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}-s{metadata.get('seed', 0)}-{hashlib.sha256(data).hexdigest()[:10]}.png"
    return write_atomically(Path(out_dir) / name, data)


def check_writable(folder: str | Path) -> Path:
    """Make sure images can be saved in ``folder`` (made if missing): called before painting, so no
    painting is lost to a folder that cannot be written."""
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".llmga-write-test-"):
            pass
    except OSError as exc:
        raise InvalidInputError(f"cannot save images in {path}: {exc.strerror or exc}") from None
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


# --------------------------------------------------------------------------
# reading


def _describe(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(Path(source).expanduser())
    if isinstance(source, (bytes, bytearray)):
        return f"the uploaded image ({len(source)} bytes)"
    if isinstance(source, Image.Image):
        return f"the {source.width}x{source.height} {source.mode} image"
    return str(getattr(source, "name", "the uploaded image"))


def _open(source: ImageSource, name: str, formats: tuple[str, ...] = FORMATS) -> Image.Image:
    """``Image.open`` on a path, bytes or binary file (``formats`` only), with Pillow's failures as
    InvalidInputError."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.exists():
            raise InvalidInputError(f"image file {name} does not exist")
        if not path.is_file():
            raise InvalidInputError(f"{name} is not a file")
        source = path
    elif isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():  # our own limits and warnings replace Pillow's
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(source, formats=list(formats))
    except Image.DecompressionBombError as exc:
        raise InvalidInputError(f"{name} is too large to open safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise InvalidInputError(
            f"{name} is not an image, or not one of the formats taken here ({', '.join(formats)})"
        ) from exc
    except _DECODE_ERRORS as exc:
        raise InvalidInputError(f"cannot read {name}: {exc}") from exc


def _prepare(image: Image.Image, name: str, max_pixels: int, max_side: int) -> Image.Image:
    """Decode, convert, orient and downscale an opened image (its shape already checked)."""
    target = fit_size(image.size, max_pixels, max_side)
    try:
        if getattr(image, "n_frames", 1) > 1:
            log.info("%s is animated (%d frames); using its first frame", name, image.n_frames)
            image.seek(0)
        if target != image.size and image.format == "JPEG":
            image.draft(None, target)  # decode at 1/2, 1/4 or 1/8 scale, at least the target size
        image.load()
    except _DECODE_ERRORS as exc:
        raise InvalidInputError(f"{name} is damaged or truncated and cannot be read whole: {exc}") from exc
    if image.mode in ("RGB", "L") and fit_size(image.size, max_pixels, max_side) != image.size:
        image = _downscaled(image, name, max_pixels, max_side)  # before the copy below: far less memory
    try:
        rgb = _to_rgb(image)
    except (ValueError, OSError) as exc:
        raise InvalidInputError(
            f"{name} has colour mode {image.mode}, which cannot become RGB: {exc}"
        ) from exc
    try:
        ImageOps.exif_transpose(rgb, in_place=True)
    except _DECODE_ERRORS as exc:
        log.warning("%s has unreadable EXIF data (%s); its orientation tag is ignored", name, exc)
    if fit_size(rgb.size, max_pixels, max_side) != rgb.size:
        rgb = _downscaled(rgb, name, max_pixels, max_side)
    return rgb


def _downscaled(image: Image.Image, name: str, max_pixels: int, max_side: int) -> Image.Image:
    target = fit_size(image.size, max_pixels, max_side)
    log.warning("%s is %dx%d; downscaled to %dx%d to fit %d pixels and %d a side",
                name, *image.size, *target, max_pixels, max_side)
    # reducing_gap: shrink by a whole factor first (small buffers), then resample: the same look, far less memory
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


# --------------------------------------------------------------------------
# colour modes


def _to_rgb(image: Image.Image) -> Image.Image:
    """A new RGB image from ``image`` in any mode (keeping its info, EXIF included)."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return _high_depth_to_8bit(image).convert("RGB")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, WHITE + (255,))
        flat.alpha_composite(_with_icc(rgba, image.info))
        flat.info = dict(image.info)
        return flat.convert("RGB")
    if image.mode in ("RGB", "CMYK") and image.info.get("icc_profile"):
        return _with_icc(image, image.info)
    return image.convert("RGB") if image.mode != "RGB" else image.copy()


def _with_icc(image: Image.Image, info: dict) -> Image.Image:
    """``image`` converted to sRGB through the ICC profile in ``info``; a plain conversion without one."""
    mode = "RGBA" if image.mode == "RGBA" else "RGB"
    icc = info.get("icc_profile")
    if icc:
        try:
            srgb = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(image, io.BytesIO(icc), srgb, outputMode=mode)
            out.info = dict(info)
            return out
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            log.warning("ignoring an unusable ICC colour profile (%s)", exc)
    return image.convert(mode)


def _high_depth_to_8bit(image: Image.Image) -> Image.Image:
    """An 8-bit greyscale image from a 16-bit, 32-bit integer or float one (see the module docstring)."""
    values = np.asarray(image.convert("I") if image.mode.startswith("I;16") else image, dtype=np.float64)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if image.mode.startswith("I;16") or (image.mode == "I" and 255 < hi <= 65535 and lo >= 0):
        values = values / 257
    elif image.mode == "F" and 0 <= lo and hi <= 1:
        values = values * 255
    elif not (image.mode == "I" and 0 <= lo and hi <= 255):
        values = (values - lo) * (255 / (hi - lo)) if hi > lo else np.zeros_like(values)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    out = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    out.info = dict(image.info)
    return out
