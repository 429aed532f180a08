"""Inpainting: repaint the masked part of an image from a prompt of any length.

:class:`InpaintPainter` composes diffusers' ``AutoPipelineForInpainting`` (an
SD 1.x/2.x or SDXL inpainting model with a 9-channel UNet; a text-to-image
model also works, through diffusers' latent blending) with the
:class:`~llmga.painter.long_prompt.LongPromptEncoder`.

Any image size works. The model paints at a working resolution: the shorter
side scaled to ``working_side`` (the model's native size by default, 512 for
SD 1.5 as in the released LLMGA code, 1024 for SDXL), within ``max_pixels``,
each side a multiple of 8. The painting is scaled back to the input's exact
size and composited onto the input through the blend band
(:func:`~llmga.painter.masks.blend_mask`), so every pixel farther than the
band from the mask is the input's own pixel. Mask rules are in
:mod:`llmga.painter.masks`.

With a ``restorer`` (a :class:`llmga.restore.Restorer`, or anything with its
``restore(painted, reference, mask)``), the painting is first repaired with the
kept region as reference (DiffRIR: the texture, brightness and contrast of the
painted part are matched to the kept part) and then composited the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..errors import InvalidInputError
from ..images import ImageLike, as_rgb
from ..masks import MaskLike, blend_mask, composite, dilate, load_mask
from ..settings import DEFAULT_MAX_PROMPT_TOKENS, PaintSettings, RuntimeSettings
from .long_prompt import LongPromptEncoder
from .runtime import ProgressCallback, load_pipeline, prepared, progress_kwargs
from .text_to_image import Painting

#: sides of the working resolution are multiples of this
MULTIPLE = 8


@dataclass
class MaskedPainting(Painting):
    """A :class:`Painting` made from an image and a mask; its metadata names the task and the geometry."""

    task: str = "inpaint"
    details: dict[str, Any] = field(default_factory=dict)
    #: the paintings at the input's size before any restoration and compositing
    raw: list[Image.Image] = field(default_factory=list, repr=False)

    def metadata(self, index: int = 0) -> dict[str, Any]:
        return {**super().metadata(index), "task": self.task, **self.details}


class InpaintPainter:
    """Repaints the masked region of an image of any size and mode.

    ``pipeline`` is a diffusers inpainting pipeline; a text-to-image pipeline is
    turned into one sharing its components (``AutoPipelineForInpainting.from_pipe``).
    ``working_side`` (default: the model's native size) and ``max_pixels``
    (default: twice its square) set the working resolution; ``blend`` is the
    blend band in working pixels (scaled to the input's pixels; default: a 32nd
    of the working side, 16 px for a 512 px model, 1 px for the 32 px world painter); ``strength``
    is passed to the pipeline (1.0 runs every step from pure noise; the SDXL
    inpainting model card suggests 0.99, which runs ``int(steps * 0.99)`` steps); ``restorer`` repairs
    each painting before it is composited (see the module docstring).
    """

    def __init__(
        self,
        pipeline: Any,
        name: str = "",
        max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
        working_side: int | None = None,
        max_pixels: int | None = None,
        blend: int | None = None,
        strength: float = 1.0,
        restorer: Any = None,
    ) -> None:
        if (blend is not None and blend < 0) or not 0 < strength <= 1:
            raise InvalidInputError(f"need blend >= 0 and 0 < strength <= 1, got {blend=}, {strength=}")
        if not hasattr(pipeline, "mask_processor"):
            from diffusers import AutoPipelineForInpainting

            pipeline = AutoPipelineForInpainting.from_pipe(pipeline)
        self.pipeline = pipeline
        self.name = name or type(pipeline).__name__
        self.encoder = LongPromptEncoder.from_pipeline(pipeline, max_tokens=max_prompt_tokens)
        self.working_side = working_side or pipeline.unet.config.sample_size * pipeline.vae_scale_factor
        self.max_pixels = max_pixels or 2 * self.working_side**2
        self.blend = self.working_side // 32 if blend is None else blend
        self.strength = strength
        self.restorer = restorer

    @classmethod
    def load(
        cls, path: str | Path, device: str | None = None, runtime: RuntimeSettings | None = None, **kwargs: Any
    ) -> InpaintPainter:
        """Load an inpainting (or text-to-image) SD 1.x/2.x or XL pipeline directory or single-file checkpoint."""
        return cls(load_pipeline("inpainting", path, device, runtime), name=str(Path(path)), **kwargs)

    def describe(self) -> str:
        return f"{self.name} ({type(self.pipeline).__name__}, {self.pipeline.device})"

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        """The resolution an image of ``width`` x ``height`` is painted at (multiples of 8)."""
        scale = min(self.working_side / min(width, height), math.sqrt(self.max_pixels / (width * height)))
        return tuple(max(MULTIPLE, round(side * scale / MULTIPLE) * MULTIPLE) for side in (width, height))

    def paint(
        self,
        image: ImageLike,
        mask: MaskLike,
        prompt: str,
        settings: PaintSettings = PaintSettings(),
        progress: ProgressCallback | None = None,
    ) -> MaskedPainting:
        """Repaint the white part of ``mask`` on ``image`` as ``prompt`` describes.

        Returns ``settings.num_images`` RGB images of exactly the input's size;
        ``settings.width``/``height`` are ignored (the size comes from the image).
        """
        original = as_rgb(image)
        binary = load_mask(mask, original.size)
        work = self.working_size(*original.size)
        band = math.ceil(self.blend * original.width / work[0])
        with prepared(self.pipeline, settings) as pipeline:
            embeddings = self.encoder.encode(prompt, settings.negative_prompt)
            result = pipeline(
                **embeddings.pipeline_kwargs(),
                image=original.resize(work, Image.Resampling.LANCZOS),
                mask_image=_model_mask(binary, band, work),
                width=work[0],
                height=work[1],
                strength=self.strength,
                num_inference_steps=settings.steps,
                guidance_scale=settings.guidance,
                num_images_per_prompt=settings.num_images,
                generator=torch.Generator(device="cpu").manual_seed(settings.seed),
                **progress_kwargs(progress),
            )
        alpha = blend_mask(binary, band)
        raw = [painted.resize(original.size, Image.Resampling.LANCZOS) for painted in result.images]
        restorer = self.restorer if settings.restore else None
        images = [composite(_restored(restorer, painted, original, binary, band), original, alpha) for painted in raw]
        details = {
            "width": original.width,
            "height": original.height,
            "working_size": list(work),
            "blend_band": band,
            **({"restorer": getattr(restorer, "name", "restorer")} if restorer is not None else {}),
        }
        return MaskedPainting(images, prompt, settings, self.name, embeddings.tokens, details=details, raw=raw)



def _model_mask(binary: Image.Image, band: int, size: tuple[int, int]) -> Image.Image:
    """What the model repaints: the mask grown by half the band, so the blend ramp crosses fresh pixels."""
    grown = dilate(binary, band // 2).resize(size, Image.Resampling.BILINEAR)
    return grown.point(lambda v: 255 if v else 0)


def _restored(restorer: Any, painted: Image.Image, original: Image.Image, binary: Image.Image,
              band: int) -> Image.Image:
    """The painting repaired by ``restorer`` (if any), the original's kept part (beyond the band) as reference."""
    if restorer is None:
        return painted
    return restorer.restore(painted, original, dilate(binary, band))
