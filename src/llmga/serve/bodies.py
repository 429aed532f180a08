"""Request bodies of the studio's API (pydantic models) and their conversion into a :class:`TurnInput`.

:class:`TurnOptions` is shared: it is the body of a session turn and the
``llmga`` extension field of OpenAI-style requests (which other clients
simply do not send).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..settings import MAX_SEED
from .studio import Studio, TurnInput
from .uploads import Upload, decode_data_url, parse_size


def _encodable(text: str) -> str:
    """Refuse text that cannot be stored or sent on: lone surrogates (``"\\ud800"`` in JSON) are not characters."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the text holds a lone surrogate (half of a UTF-16 pair), which is not a character") from None
    return text


#: any text a client sends (pydantic checks it can be stored)
Text = Annotated[str, AfterValidator(_encodable)]
Seed = Field(None, ge=0, le=MAX_SEED)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PaintOptions(_Strict):
    """Painter settings; anything left out is the server's default."""

    seed: int | None = Seed
    steps: int | None = Field(None, ge=1)
    guidance: float | None = Field(None, ge=0, le=100)
    width: int | None = Field(None, ge=8)
    height: int | None = Field(None, ge=8)
    negative_prompt: Text | None = None
    num_images: int | None = Field(None, ge=1)
    restore: bool | None = Field(None, description="false: leave in/outpaintings unrepaired by the restorer")


class SamplingOptions(_Strict):
    """Brain sampling settings; anything left out is the server's default."""

    temperature: float | None = Field(None, ge=0, le=5)
    top_p: float | None = Field(None, gt=0, le=1)
    max_new_tokens: int | None = Field(None, ge=1)
    seed: int | None = Seed
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

    task: str | None = Field(None, max_length=40,
                             description="generate, inpaint, outpaint, edit, similar, controlnet, expand")
    refine: bool | None = None
    source_prompt: Text | None = None
    mask: str | None = None
    control: str | None = None
    control_from_photo: bool = False
    outpaint: OutpaintOptions | None = None
    expand_to: str | None = Field(None, max_length=40, description="WIDTHxHEIGHT to grow the picture to")
    paint: PaintOptions = PaintOptions()
    sampling: SamplingOptions = SamplingOptions()


class TurnBody(TurnOptions):
    """A new turn of a session."""

    text: Text
    image: str | None = None
    wait: bool = Field(False, description="answer when the turn is done instead of at once (202)")


class SessionBody(_Strict):
    title: Text = Field("", max_length=200)


class BranchBody(_Strict):
    """Branch from a done turn, or from the turn that painted an image (which becomes the newest image)."""

    turn_id: str | None = Field(None, max_length=64)
    image: str | None = Field(None, description="hash or URL of an image painted in the session")
    title: Text | None = Field(None, max_length=200)


def turn_input(studio: Studio, text: str, image: str | Upload | None, options: TurnOptions,
               refine_default: bool = True, session_id: str | None = None, **overrides) -> TurnInput:
    """Decode and check a turn's images and options (runs in a worker thread: decoding takes time).

    Images are data URLs, or images of the store named as :meth:`Studio.stored_image` allows
    (within ``session_id``, the session the turn goes to, if it exists already).
    """
    main = resolve_image(studio, image, "image", session_id) if isinstance(image, str) else image
    mask = resolve_mask(studio, options.mask, main, session_id) if options.mask else None
    paint = {**options.paint.model_dump(exclude_none=True), **overrides.pop("paint", {})}
    return TurnInput(
        text=text, image=main, mask=mask,
        control=resolve_image(studio, options.control, "control", session_id) if options.control else None,
        control_from_photo=options.control_from_photo,
        outpaint=options.outpaint.model_dump() if options.outpaint else None,
        expand_to=parse_size(options.expand_to, "expand_to"),
        task=options.task, source_prompt=options.source_prompt,
        refine=refine_default if options.refine is None else options.refine,
        paint=paint, sampling=options.sampling.model_dump(exclude_none=True), **overrides,
    )


def resolve_image(studio: Studio, reference: str, field: str, session_id: str | None = None) -> Upload:
    """An image from a data URL, or one of the store's images by reference."""
    if reference.startswith("data:"):
        return studio.decoder.image(decode_data_url(reference, studio.limits, field), field)
    digest = studio.stored_image(reference, session_id, field)
    image = studio.load_image(digest)
    return Upload(image, image.size, hash=digest)


def resolve_mask(studio: Studio, reference: str, image: Upload | None, session_id: str | None = None) -> Upload:
    if reference.startswith("data:"):
        data = decode_data_url(reference, studio.limits, "mask")
    else:
        data = studio.store.image_path(studio.stored_image(reference, session_id, "mask")).read_bytes()
    return studio.decoder.mask(data, image)
