"""Text-to-image painting with a diffusers Stable Diffusion pipeline.

The painter composes a diffusers pipeline (SD 1.x/2.x or SDXL, loaded as
``AutoPipelineForText2Image`` would from a local directory) with the
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

from ..settings import DEFAULT_MAX_PROMPT_TOKENS, PaintSettings, RuntimeSettings
from .long_prompt import LongPromptEncoder, PromptEmbeddings
from .runtime import ProgressCallback, load_pipeline, prepared, progress_kwargs


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
    def load(
        cls, path: str | Path, device: str | None = None, runtime: RuntimeSettings | None = None, **kwargs: Any
    ) -> TextToImagePainter:
        """Load a Stable Diffusion (1.x/2.x or XL) pipeline directory or single-file checkpoint."""
        pipeline = load_pipeline("text2image", path, device, runtime)
        return cls(pipeline, name=str(Path(path)), **kwargs)

    def describe(self) -> str:
        return f"{self.name} ({type(self.pipeline).__name__}, {self.pipeline.device})"

    def paint(
        self, prompt: str, settings: PaintSettings = PaintSettings(), progress: ProgressCallback | None = None
    ) -> Painting:
        """Paint ``settings.num_images`` images of ``prompt``."""
        return self.paint_encoded(prompt, lambda: self.encoder.encode(prompt, settings.negative_prompt), settings,
                                  progress)

    def paint_encoded(
        self, prompt: str, encode: Callable[[], PromptEmbeddings], settings: PaintSettings = PaintSettings(),
        progress: ProgressCallback | None = None,
    ) -> Painting:
        """Paint from the prompt embeddings ``encode()`` returns (called once the pipeline is set up for
        ``settings``, whose LoRAs change the text encoders); ``prompt`` is what the painting records."""
        generator = torch.Generator(device="cpu").manual_seed(settings.seed)
        with prepared(self.pipeline, settings) as pipeline:
            embeddings = encode()
            result = pipeline(
                **embeddings.pipeline_kwargs(),
                num_inference_steps=settings.steps,
                guidance_scale=settings.guidance,
                width=settings.width,
                height=settings.height,
                num_images_per_prompt=settings.num_images,
                generator=generator,
                **progress_kwargs(progress),
            )
        return Painting(result.images, prompt, settings, self.name, prompt_tokens=embeddings.tokens)
