"""Text-to-image painting with a diffusers Stable Diffusion pipeline.

The painter composes a diffusers pipeline (SD 1.x/2.x or SDXL, loaded with
``AutoPipelineForText2Image`` from a local directory) with the
:class:`~llmga.painter.long_prompt.LongPromptEncoder`, so prompts of any length
reach the UNet whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..models import check_diffusers_dir
from ..settings import DEFAULT_MAX_PROMPT_TOKENS, PaintSettings
from .long_prompt import LongPromptEncoder

#: called after each denoising step with (step, total_steps)
ProgressCallback = Callable[[int, int], None]


@dataclass
class Painting:
    """Images painted for one prompt, with everything needed to reproduce them."""

    images: list[Image.Image]
    prompt: str
    settings: PaintSettings
    model: str
    prompt_tokens: int = 0

    def metadata(self, index: int = 0) -> dict[str, Any]:
        """What went into image ``index`` (its seed is the batch seed; images follow in order)."""
        return {
            "prompt": self.prompt,
            "model": self.model,
            "index": index,
            "prompt_tokens": self.prompt_tokens,
            **self.settings.as_metadata(),
        }


class TextToImagePainter:
    """Paints a prompt of any length with a diffusers text-to-image pipeline."""

    def __init__(self, pipeline: Any, name: str = "", max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS) -> None:
        self.pipeline = pipeline
        self.name = name or type(pipeline).__name__
        self.encoder = LongPromptEncoder.from_pipeline(pipeline, max_tokens=max_prompt_tokens)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None, **kwargs: Any) -> TextToImagePainter:
        """Load a Stable Diffusion (1.x/2.x or XL) pipeline directory."""
        from diffusers import AutoPipelineForText2Image

        path = check_diffusers_dir(path)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.float16 if device == "cuda" else torch.float32
        pipe = AutoPipelineForText2Image.from_pretrained(path, local_files_only=True, dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe.to(device), name=str(path), **kwargs)

    def describe(self) -> str:
        return f"{self.name} ({type(self.pipeline).__name__}, {self.pipeline.device})"

    def paint(
        self, prompt: str, settings: PaintSettings = PaintSettings(), progress: ProgressCallback | None = None
    ) -> Painting:
        """Paint ``settings.num_images`` images of ``prompt``."""
        embeddings = self.encoder.encode(prompt, settings.negative_prompt)
        generator = torch.Generator(device="cpu").manual_seed(settings.seed)
        kwargs: dict[str, Any] = {}
        if progress is not None:
            kwargs["callback_on_step_end"] = lambda pipe, step, t, cb: (progress(step + 1, settings.steps), cb)[1]
        result = self.pipeline(
            **embeddings.pipeline_kwargs(),
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance,
            width=settings.width,
            height=settings.height,
            num_images_per_prompt=settings.num_images,
            generator=generator,
            **kwargs,
        )
        return Painting(result.images, prompt, settings, self.name, prompt_tokens=embeddings.tokens)
