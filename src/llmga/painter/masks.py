"""Masks for inpainting and outpainting: reading them, and blending painted pixels back.

Conventions, shared by every masked painter:

- White means repaint, black means keep. A mask of any mode is read as
  grey levels; where it has transparency (RGBA, LA, a palette with a
  transparent colour) each pixel counts as ``brightness x opacity``, so a
  transparent pixel is "keep". Grey levels are binarized at 128.
- A mask whose size differs from the image's is refused
  (:class:`~llmga.errors.InvalidInputError` naming both sizes) rather than
  resized: a mask of another size was most likely drawn on another image, and
  a silent resize would repaint the wrong pixels.
- An empty (all black) mask is refused: there is nothing to repaint. A full
  (all white) mask is allowed and repaints the whole image.
- The blend band: the painted result is composited onto the original through
  :func:`blend_mask`, which is 1 on the mask, ramps down to 0 within ``band``
  pixels (Chebyshev distance) of it and is exactly 0 beyond, so every pixel
  farther than ``band`` from the mask stays identical to the input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, UnidentifiedImageError

from ..errors import InvalidInputError
from .images import load_image

#: grey level from which a mask pixel means "repaint"
THRESHOLD = 128

MaskLike = Image.Image | np.ndarray | str | Path
ImageLike = Image.Image | str | Path


def as_rgb(image: ImageLike) -> Image.Image:
    """An RGB copy of ``image`` (a PIL image of any mode, or a file path)."""
    if isinstance(image, (str, Path)):
        return load_image(image)
    if not isinstance(image, Image.Image):
        raise InvalidInputError(f"expected a PIL image or a file path, got {type(image).__name__}")
    return image.convert("RGB")


def load_mask(mask: MaskLike, size: tuple[int, int] | None = None, allow_empty: bool = False) -> Image.Image:
    """Read ``mask`` (PIL image, bool/uint8 array or file path) as a binary ``L`` image (0 keep, 255 repaint).

    ``size`` (width, height) is the image's size: a mask of another size is refused.
    An empty mask is refused unless ``allow_empty``.
    """
    grey = _grey(_open_mask(mask))
    if size is not None and grey.size != tuple(size):
        raise InvalidInputError(
            f"the mask is {grey.width}x{grey.height} but the image is {size[0]}x{size[1]}; "
            "draw the mask on this image, or resize it to the image's size"
        )
    binary = grey.point(lambda v: 255 if v >= THRESHOLD else 0)
    if not allow_empty and binary.getbbox() is None:
        raise InvalidInputError(
            "the mask is empty (all black): nothing to repaint; paint white where the image should change"
        )
    return binary


def dilate(mask: Image.Image, radius: int) -> Image.Image:
    """Grow a binary mask by ``radius`` pixels (a square neighbourhood)."""
    if radius <= 0:
        return mask.copy()
    on = (np.asarray(mask) > 0).astype(np.int32)
    return Image.fromarray(np.where(_box_sum(on, radius) > 0, 255, 0).astype(np.uint8))


def blend_mask(mask: Image.Image, band: int) -> Image.Image:
    """The compositing alpha for ``mask``: 255 on it, a ramp across ``band`` pixels, 0 beyond.

    Made by dilating by half the band and box-blurring by the other half, so
    the ramp never reaches past ``band`` pixels and never eats into the mask.
    """
    grow, blur = (band + 1) // 2, band // 2
    grown = dilate(mask, grow)
    if blur == 0:
        return grown
    window = (2 * blur + 1) ** 2
    sums = _box_sum((np.asarray(grown) > 0).astype(np.int32), blur).astype(np.int64)
    return Image.fromarray(((sums * 255 + window // 2) // window).astype(np.uint8))


def composite(painted: Image.Image, original: Image.Image, alpha: Image.Image) -> Image.Image:
    """``painted`` where ``alpha`` is 255, ``original`` where it is 0, a mix between."""
    return Image.composite(painted.convert("RGB"), original.convert("RGB"), alpha)


def _open_mask(mask: MaskLike) -> Image.Image:
    if isinstance(mask, Image.Image):
        return mask
    if isinstance(mask, np.ndarray):
        if mask.ndim != 2 or mask.dtype not in (np.bool_, np.uint8):
            raise InvalidInputError(f"a mask array must be 2-D bool or uint8, got {mask.ndim}-D {mask.dtype}")
        return Image.fromarray(mask.astype(np.uint8) * 255 if mask.dtype == np.bool_ else mask)
    if isinstance(mask, (str, Path)):
        path = Path(mask).expanduser()
        try:
            with Image.open(path) as opened:
                opened.load()
                return opened.copy()
        except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
            raise InvalidInputError(f"cannot read mask {path}: {exc}") from exc
    raise InvalidInputError(f"expected a mask image, array or file path, got {type(mask).__name__}")


def _grey(mask: Image.Image) -> Image.Image:
    """Grey levels of any mode; transparent pixels count as black."""
    if mask.mode in ("RGBA", "LA", "PA") or "transparency" in mask.info:
        rgba = mask.convert("RGBA")
        return ImageChops.multiply(rgba.convert("L"), rgba.getchannel("A"))
    return mask.convert("L")


def _box_sum(values: np.ndarray, radius: int) -> np.ndarray:
    """Sum over the (2r+1)x(2r+1) square around each pixel, edges replicated."""
    return _run_sum(_run_sum(values, radius).T, radius).T


def _run_sum(values: np.ndarray, radius: int) -> np.ndarray:
    """Sum over 2r+1 neighbours along each row, edges replicated (prefix sums, O(pixels))."""
    padded = np.pad(values, ((0, 0), (radius + 1, radius)), mode="edge")
    sums = np.cumsum(padded, axis=1, dtype=np.int32)
    width = values.shape[1]
    return sums[:, 2 * radius + 1 :] - sums[:, :width]
