"""Opening user images robustly: any file Pillow reads becomes a sane RGB image.

:func:`open_image` is the one door for pictures coming from users (photos to
edit, control maps, masks). What it does with odd inputs, so callers need not:

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
  scale, which is fast and small); above ``refuse_pixels`` (read from the
  header, before any decoding) the image is refused;
- **unreadable** input (missing file, not an image, truncated or corrupt data,
  a decompression bomb): :class:`~llmga.errors.InvalidInputError` naming the
  file and the problem. Truncated images are never padded out with grey.
"""

from __future__ import annotations

import io
import logging
import math
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from ..errors import InvalidInputError

log = logging.getLogger(__name__)

ImageSource = str | os.PathLike[str] | bytes | bytearray | BinaryIO | Image.Image

#: images with more pixels are downscaled to fit (SD paints at 512-1024 px a side)
MAX_PIXELS = 2048 * 2048
#: images with a longer side are downscaled to fit
MAX_SIDE = 4096
#: images with more pixels are refused unread (Pillow's own decompression-bomb limit)
REFUSE_PIXELS = 2 * 89_478_485

WHITE = (255, 255, 255)
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
# what a damaged file raises somewhere inside Pillow's decoders
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


def open_image(
    source: ImageSource,
    *,
    max_pixels: int = MAX_PIXELS,
    max_side: int = MAX_SIDE,
    refuse_pixels: int = REFUSE_PIXELS,
    name: str | None = None,
) -> Image.Image:
    """Open ``source`` (path, bytes, binary file or PIL image) as a new RGB image.

    See the module docstring for what happens to transparent, 16-bit, float,
    CMYK, rotated, animated and huge images. ``name`` labels the image in
    messages (default: the path, or a description of the bytes). Raises
    :class:`~llmga.errors.InvalidInputError` for anything that is not a
    readable image within ``refuse_pixels``.
    """
    name = name or _describe(source)
    if isinstance(source, Image.Image):
        return _prepare(source, name, max_pixels, max_side, refuse_pixels)
    with _open(source, name) as image:
        return _prepare(image, name, max_pixels, max_side, refuse_pixels)


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
# reading


def _describe(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(Path(source).expanduser())
    if isinstance(source, (bytes, bytearray)):
        return f"the uploaded image ({len(source)} bytes)"
    if isinstance(source, Image.Image):
        return f"the {source.width}x{source.height} {source.mode} image"
    return str(getattr(source, "name", "the uploaded image"))


def _open(source: ImageSource, name: str) -> Image.Image:
    """``Image.open`` on a path, bytes or binary file, with Pillow's failures as InvalidInputError."""
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
            return Image.open(source)
    except Image.DecompressionBombError as exc:
        raise InvalidInputError(f"{name} is too large to open safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise InvalidInputError(
            f"{name} is not an image, or is in a format Pillow cannot read "
            "(PNG, JPEG, WebP, GIF, TIFF, BMP, ... work)"
        ) from exc
    except _DECODE_ERRORS as exc:
        raise InvalidInputError(f"cannot read {name}: {exc}") from exc


def _prepare(
    image: Image.Image, name: str, max_pixels: int, max_side: int, refuse_pixels: int
) -> Image.Image:
    """Check, decode, convert, orient and downscale an opened image."""
    width, height = image.size
    if width * height > refuse_pixels:
        raise InvalidInputError(
            f"{name} is {width}x{height} ({width * height / 1e6:.0f} megapixels); images over "
            f"{refuse_pixels / 1e6:.0f} megapixels are refused. Downscale it first."
        )
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
    target = fit_size(rgb.size, max_pixels, max_side)
    if target != rgb.size:
        log.warning(
            "%s is %dx%d; downscaled to %dx%d to fit %d pixels and %d a side",
            name, width, height, *target, max_pixels, max_side,
        )
        rgb = rgb.resize(target, Image.Resampling.LANCZOS)
    return rgb


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
