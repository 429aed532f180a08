"""Turning what clients send (data URLs, multipart files, references to stored images) into checked images.

Nothing here fetches from the network or touches a path a client named:
an image is either bytes in the request or an image of this server's own store
(see :mod:`llmga.serve.image_urls`). Limits are checked before decoding (bytes,
then the pixels, side and shape in the header) and answered with 413 (400 for
a shape too thin); only PNG, JPEG, WebP and GIF are opened; decoding holds a
share of a memory budget (:class:`Decoder`); anything unreadable is a 400
naming the field.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image

from ..errors import InvalidInputError
from ..images import open_image
from ..masks import load_mask
from ..settings import STUDIO_FORMATS, Limits
from .budget import MemoryBudget
from .http_errors import PayloadTooLargeError, UnsupportedMediaError

_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,",
                       re.IGNORECASE)
_SIZE = re.compile(r"(\d{1,5})\s*[x×]\s*(\d{1,5})", re.IGNORECASE)


@dataclass
class Upload:
    """A checked RGB image; ``original_size`` before any downscaling, ``hash`` when it is already stored."""

    image: Image.Image
    original_size: tuple[int, int]
    hash: str | None = None


def decode_data_url(url: str, limits: Limits, field: str) -> bytes:
    """The bytes of a base64 ``data:image/...`` URL (413 when over ``max_image_bytes``)."""
    match = _DATA_URL.match(url)
    if not match or not match.group("b64"):
        raise InvalidInputError(f"{field}: expected a base64 data URL (data:image/png;base64,...)")
    media = (match.group("type") or "").lower()
    if media and not media.startswith("image/"):
        raise UnsupportedMediaError(f"{field}: a data URL of type {media} is not an image")
    payload = url[match.end():]
    if len(payload) * 3 // 4 > limits.max_image_bytes:
        raise PayloadTooLargeError(f"{field}: the image is over the {limits.max_image_bytes} byte limit")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(f"{field}: the data URL is not valid base64 ({exc})") from exc


#: bytes of memory decoding takes per pixel, at its peak (the file's pixels, RGBA and RGB copies, a resize)
BYTES_PER_PIXEL = 16


class Decoder:
    """Opens uploaded images: checked against the limits from their header, then decoded within a memory budget."""

    def __init__(self, limits: Limits, budget: MemoryBudget | None = None) -> None:
        self.limits = limits
        self.budget = budget or MemoryBudget(limits.request_memory)

    def image(self, data: bytes, field: str) -> Upload:
        """Check and open image bytes as RGB (huge images are downscaled by :func:`open_image`)."""
        size = self._check(data, field)
        limits = self.limits
        with self.budget.hold((size[0] * size[1] if size else 0) * BYTES_PER_PIXEL):
            image = open_image(data, name=f"{field} ({len(data)} bytes)", formats=STUDIO_FORMATS,
                               refuse_pixels=limits.max_image_pixels, refuse_side=limits.max_image_side,
                               refuse_aspect=limits.max_image_aspect)
        return Upload(image, size or image.size)

    def mask(self, data: bytes, image: Upload | None, field: str = "mask",
             transparent_means_edit: bool = False) -> Upload:
        """Open a mask (white = repaint), checked against ``image``'s size when there is one.

        A mask drawn on the original of a downscaled image is scaled with it. With
        ``transparent_means_edit`` (OpenAI's convention) a mask with transparent
        pixels repaints where it is transparent.
        """
        mask = self.picture(data, field)
        drawn_size = mask.size
        if transparent_means_edit and _has_transparency(mask):
            mask = mask.convert("RGBA").getchannel("A").point(lambda a: 255 - a)
        if image is not None and mask.size == image.original_size != image.image.size:
            mask = mask.resize(image.image.size, Image.Resampling.NEAREST)
        return Upload(load_mask(mask, image.image.size if image is not None else None), drawn_size)

    def picture(self, data: bytes, field: str) -> Image.Image:
        """Check and decode image bytes as they are (any mode, no conversion): a mask, a layer of strokes."""
        size = self._check(data, field)
        if size is None:
            raise InvalidInputError(f"{field}: not a {', '.join(STUDIO_FORMATS)} image, or a damaged one")
        with self.budget.hold(size[0] * size[1] * BYTES_PER_PIXEL):
            try:
                with Image.open(io.BytesIO(data), formats=list(STUDIO_FORMATS)) as opened:
                    opened.load()
                    return opened.copy()
            except Exception as exc:  # Pillow's decoders raise many kinds
                raise InvalidInputError(f"{field}: cannot read the image ({exc})") from exc

    def _check(self, data: bytes, field: str) -> tuple[int, int] | None:
        """The size in the header, refused (413/400) beyond the limits before anything is decoded."""
        limits = self.limits
        if len(data) > limits.max_image_bytes:
            raise PayloadTooLargeError(f"{field}: {len(data)} bytes is over the {limits.max_image_bytes} byte limit")
        if not data:
            raise InvalidInputError(f"{field}: the image is empty")
        size = _header_size(data, field)
        if size is None:
            return None
        width, height = size
        if width * height > limits.max_image_pixels or max(size) > limits.max_image_side:
            raise PayloadTooLargeError(
                f"{field}: {width}x{height} is over the limit of {limits.max_image_pixels} pixels and "
                f"{limits.max_image_side} a side; downscale it first")
        if min(size) < 1 or max(size) / min(size) > limits.max_image_aspect:
            raise InvalidInputError(
                f"{field}: {width}x{height} is longer than {limits.max_image_aspect:g} times its width (or height)")
        return size


def parse_size(text: str | None, field: str = "size") -> tuple[int, int] | None:
    """``"512x768"`` as (512, 768); None for None, ``""`` or ``"auto"``."""
    if text is None or text.strip().lower() in ("", "auto"):
        return None
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise InvalidInputError(f"{field}: expected WIDTHxHEIGHT such as 512x512, got {text[:40]!r}")
    return int(match.group(1)), int(match.group(2))


def _header_size(data: bytes, field: str) -> tuple[int, int] | None:
    """Width and height from the image header, without decoding pixels (None if unreadable)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=list(STUDIO_FORMATS)) as image:
                return image.size
    except Image.DecompressionBombError as exc:
        raise PayloadTooLargeError(f"{field}: the image is far too large to open: {exc}") from exc
    except Exception:  # the full open reports the problem properly
        return None


def _has_transparency(image: Image.Image) -> bool:
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return False
    return image.convert("RGBA").getchannel("A").getextrema()[0] < 255
