"""Text-to-image painting with a diffusers Stable Diffusion pipeline.

The painter composes a diffusers pipeline (SD 1.x/2.x or SDXL, loaded as
``AutoPipelineForText2Image`` would from a local directory) with the
:class:`~llmga.painter.long_prompt.LongPromptEncoder`, so prompts of any length
reach the UNet whole.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Any

import torch
from PIL import Image

from ..checkpoints import check_diffusers_dir
from ..settings import DEFAULT_MAX_PROMPT_TOKENS, PaintSettings, RuntimeSettings
from .long_prompt import LongPromptEncoder, PromptEmbeddings
from .preload import import_in_background
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
    """Paints a prompt of any length with a diffusers text-to-image pipeline.

    A painter made by ``load(..., lazy=True)`` loads its pipeline on first use
    (of ``pipeline`` or ``encoder``), while the libraries that load it are
    imported in the background from the start.
    """

    def __init__(self, pipeline: Any, name: str = "", max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS) -> None:
        self.name = name or type(pipeline).__name__
        self.max_prompt_tokens = max_prompt_tokens
        self._take(pipeline)

    def _take(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.encoder = LongPromptEncoder.from_pipeline(pipeline, max_tokens=self.max_prompt_tokens)

    @classmethod
    def load(
        cls, path: str | Path, device: str | None = None, runtime: RuntimeSettings | None = None,
        lazy: bool = False, max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
    ) -> TextToImagePainter:
        """Load a Stable Diffusion (1.x/2.x or XL) pipeline directory or single-file checkpoint; with
        ``lazy``, check it now and load it on first use (a command's brain answers meanwhile)."""
        if not lazy:
            return cls(load_pipeline("text2image", path, device, runtime), str(Path(path)), max_prompt_tokens)
        import_in_background("text2image", check_diffusers_dir(path))
        painter = cls.__new__(cls)
        painter.name, painter.max_prompt_tokens = str(Path(path)), max_prompt_tokens
        painter._load, painter._loading = functools.partial(load_pipeline, "text2image", path, device, runtime), Lock()
        return painter

    def __getattr__(self, attr: str) -> Any:
        """Only for attributes not set yet: ``pipeline`` and ``encoder`` of a lazy painter, loaded here once."""
        load = self.__dict__.get("_load")
        if attr not in ("pipeline", "encoder") or load is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")
        with self._loading:
            if "pipeline" not in self.__dict__:
                self._take(load())
        return getattr(self, attr)

    def describe(self) -> str:
        if "pipeline" not in self.__dict__:
            return f"{self.name} (loads on first painting)"
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
