"""Request bodies of the studio's API (pydantic models) and their conversion into a :class:`TurnInput`.

:class:`TurnOptions` is shared: it is the body of a session turn and the
``llmga`` extension field of OpenAI-style requests (which other clients
simply do not send).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidInputError
from .studio import Studio, TurnInput
from .uploads import Upload, decode_data_url, parse_size, read_image, read_mask, stored_hash


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PaintOptions(_Strict):
    """Painter settings; anything left out is the server's default."""

    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    steps: int | None = Field(None, ge=1)
    guidance: float | None = Field(None, ge=0, le=100)
    width: int | None = Field(None, ge=8)
    height: int | None = Field(None, ge=8)
    negative_prompt: str | None = None
    num_images: int | None = Field(None, ge=1)


class SamplingOptions(_Strict):
    """Brain sampling settings; anything left out is the server's default."""

    temperature: float | None = Field(None, ge=0, le=5)
    top_p: float | None = Field(None, gt=0, le=1)
    max_new_tokens: int | None = Field(None, ge=1, le=32768)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    repetition_penalty: float | None = Field(None, gt=0, le=10)


class OutpaintOptions(_Strict):
    """Extend the image by pixels per side, or to an aspect (e.g. "16:9") in a direction."""

    left: int = Field(0, ge=0, le=4096)
    right: int = Field(0, ge=0, le=4096)
    top: int = Field(0, ge=0, le=4096)
    bottom: int = Field(0, ge=0, le=4096)
    aspect: str | None = Field(None, max_length=20)
    direction: Literal["both", "left", "right", "top", "bottom"] = "both"


class TurnOptions(_Strict):
    """What a turn may carry besides its text and main image.

    Images (``mask``, ``control``) are base64 data URLs or ``/files/<hash>.png``
    of this server. ``refine`` false paints the text itself without the brain.
    """

    task: str | None = Field(None, description="generate, inpaint, outpaint, edit, similar, controlnet, expand")
    refine: bool | None = None
    source_prompt: str | None = None
    mask: str | None = None
    control: str | None = None
    control_from_photo: bool = False
    outpaint: OutpaintOptions | None = None
    expand_to: str | None = Field(None, description="WIDTHxHEIGHT to grow the picture to")
    paint: PaintOptions = PaintOptions()
    sampling: SamplingOptions = SamplingOptions()


class TurnBody(TurnOptions):
    """A new turn of a session."""

    text: str
    image: str | None = None
    wait: bool = Field(False, description="answer when the turn is done instead of at once (202)")


class SessionBody(_Strict):
    title: str = Field("", max_length=200)


class BranchBody(_Strict):
    """Branch from a done turn, or from the turn that painted an image (which becomes the newest image)."""

    turn_id: str | None = None
    image: str | None = Field(None, description="hash or /files/<hash>.png of an image painted in the session")
    title: str | None = Field(None, max_length=200)


def turn_input(studio: Studio, text: str, image: str | Upload | None, options: TurnOptions,
               refine_default: bool = True, **overrides) -> TurnInput:
    """Decode and check a turn's images and options (runs in a worker thread: decoding takes time)."""
    main = resolve_image(studio, image, "image") if isinstance(image, str) else image
    mask = resolve_mask(studio, options.mask, main) if options.mask else None
    paint = {**options.paint.model_dump(exclude_none=True), **overrides.pop("paint", {})}
    return TurnInput(
        text=text, image=main, mask=mask,
        control=resolve_image(studio, options.control, "control") if options.control else None,
        control_from_photo=options.control_from_photo,
        outpaint=options.outpaint.model_dump() if options.outpaint else None,
        expand_to=parse_size(options.expand_to, "expand_to"),
        task=options.task, source_prompt=options.source_prompt,
        refine=refine_default if options.refine is None else options.refine,
        paint=paint, sampling=options.sampling.model_dump(exclude_none=True), **overrides,
    )


def resolve_image(studio: Studio, reference: str, field: str) -> Upload:
    """An image from a data URL, or one of the store's images by reference."""
    if reference.startswith("data:"):
        return read_image(decode_data_url(reference, studio.limits, field), studio.limits, field)
    digest = _stored(reference, field)
    image = studio.load_image(digest)
    return Upload(image, image.size, hash=digest)


def resolve_mask(studio: Studio, reference: str, image: Upload | None) -> Upload:
    if reference.startswith("data:"):
        data = decode_data_url(reference, studio.limits, "mask")
    else:
        data = studio.store.image_path(_stored(reference, "mask")).read_bytes()
    return read_mask(data, image, studio.limits)


def _stored(reference: str, field: str) -> str:
    digest = stored_hash(reference)
    if digest is None:
        raise InvalidInputError(
            f"{field}: give a base64 data URL or /files/<hash>.png of this server; "
            "the studio fetches nothing from the network")
    return digest
