"""ControlNet painting: a prompt plus a control image (edges, depth, pose, ...) that fixes the layout.

:class:`ControlNetPainter` composes a Stable Diffusion base (1.x/2.x, or XL)
with a diffusers ``ControlNetModel`` into ``StableDiffusionControlNetPipeline``
(or ``StableDiffusionXLControlNetPipeline``), from two local directories or
from objects already loaded. Prompts of any length go through the
:class:`~llmga.painter.long_prompt.LongPromptEncoder`.

The control image is either a map the user already has (an edge, depth, pose
... image, used as is) or, with ``from_photo=True``, computed from a photo by
the detector for the ControlNet's kind (built in: ``canny``, see
:func:`canny_edges`). The output size comes from the settings, else from the
control image (rounded to multiples of 8); the control image is resized
(stretched if the aspect differs) to the output size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..checkpoints import check_diffusers_dir, has_weights, read_config
from ..errors import InvalidInputError, ModelNotFoundError
from ..images import ImageSource, open_image, size_multiple_of
from ..settings import DEFAULT_MAX_PROMPT_TOKENS, PaintSettings
from .long_prompt import LongPromptEncoder
from .runtime import device_and_dtype, load_pipeline, progress_kwargs
from .text_to_image import Painting, ProgressCallback

CONTROLNET_HOWTO = (
    "A ControlNet is a diffusers ControlNetModel directory (config.json plus "
    "diffusion_pytorch_model.safetensors), e.g. one written by `controlnet.save_pretrained(DIR)` or "
    "`huggingface-cli download lllyasviel/sd-controlnet-canny --local-dir DIR` (SD 1.5; for SDXL e.g. "
    "diffusers/controlnet-canny-sdxl-1.0) on a machine with internet."
)

#: kinds of ControlNet recognised in a directory name (anything else is "custom")
CONTROL_TYPES = ("canny", "depth", "normal", "openpose", "pose", "scribble", "lineart", "softedge", "hed",
                 "mlsd", "seg", "tile", "inpaint", "shuffle")


def canny_edges(photo: ImageSource, low: float = 100, high: float = 200) -> Image.Image:
    """Canny edges of ``photo`` as an RGB image, white edges on black (what canny ControlNets read).

    ``low``/``high`` are the hysteresis thresholds on OpenCV's 0-255 scale
    (gradient magnitude of 8-bit grey, as ``cv2.Canny(..., L2gradient=True)``);
    100/200 are the values ControlNet's examples use. The photo is blurred
    lightly first (5x5 Gaussian, sigma 1) by ``kornia.filters.canny``.
    """
    from kornia.filters import canny

    if not 0 < low <= high:
        raise InvalidInputError(f"canny thresholds need 0 < low <= high, got low={low}, high={high}")
    rgb = np.asarray(open_image(photo), dtype=np.float32) / 255
    _, edges = canny(torch.from_numpy(rgb).permute(2, 0, 1)[None], low / 255, high / 255)
    return Image.fromarray((edges[0, 0].numpy() * 255).astype(np.uint8)).convert("RGB")


#: control-map detectors by ControlNet kind, for ``paint(..., from_photo=True)``
DETECTORS: dict[str, Callable[[Image.Image], Image.Image]] = {"canny": canny_edges}


def check_controlnet_dir(path: str | Path) -> Path:
    """Check that ``path`` holds a diffusers ControlNetModel (config.json + weights); return it resolved."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelNotFoundError(f"ControlNet path {path} does not exist. {CONTROLNET_HOWTO}")
    if (path / "model_index.json").is_file():
        raise ModelNotFoundError(
            f"{path} is a whole pipeline, not a ControlNet; pass its controlnet/ folder. {CONTROLNET_HOWTO}"
        )
    problems = []
    if not (path / "config.json").is_file():
        problems.append("config.json is missing")
    if not has_weights(path):
        problems.append("no weights (*.safetensors or *.bin)")
    if problems:
        raise ModelNotFoundError(
            f"the ControlNet at {path} is incomplete: {'; '.join(problems)}. {CONTROLNET_HOWTO}"
        )
    kind = read_config(path).get("_class_name", "ControlNetModel")
    if kind != "ControlNetModel":
        raise ModelNotFoundError(f"{path} holds a {kind}, not a ControlNetModel. {CONTROLNET_HOWTO}")
    return path.resolve()


def guess_control_type(path: str | Path) -> str:
    """The ControlNet's kind from its directory name (``sd-controlnet-canny``: ``canny``), else ``custom``."""
    name = Path(path).name.lower()
    return next((kind for kind in CONTROL_TYPES if kind in name), "custom")


@dataclass
class ControlPainting(Painting):
    """A :class:`Painting` steered by a control image, which it keeps."""

    control: Image.Image | None = None
    control_type: str = "custom"
    control_source: str = "map"  # "map": given as is; else the detector that made it from a photo
    conditioning_scale: float = 1.0

    def metadata(self, index: int = 0) -> dict[str, Any]:
        return {
            **super().metadata(index),
            "task": "controlnet",
            "control_type": self.control_type,
            "control_source": self.control_source,
            "conditioning_scale": self.conditioning_scale,
        }


class ControlNetPainter:
    """Paints a prompt of any length following a control image, with a diffusers ControlNet pipeline."""

    def __init__(
        self,
        pipeline: Any,
        name: str = "",
        control_type: str = "custom",
        max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
    ) -> None:
        if getattr(pipeline, "controlnet", None) is None:
            raise InvalidInputError(
                f"{type(pipeline).__name__} has no ControlNet; use ControlNetPainter.from_pipeline"
            )
        self.pipeline = pipeline
        self.name = name or type(pipeline).__name__
        self.control_type = control_type
        self.encoder = LongPromptEncoder.from_pipeline(pipeline, max_tokens=max_prompt_tokens)

    @classmethod
    def load(
        cls,
        base: str | Path,
        controlnet: str | Path,
        control_type: str | None = None,
        device: str | None = None,
        **kwargs: Any,
    ) -> ControlNetPainter:
        """Load a Stable Diffusion (1.x/2.x or XL) directory and a ControlNet directory made for it.

        ``control_type`` None guesses the kind from the ControlNet's directory name.
        """
        from diffusers import AutoPipelineForText2Image, ControlNetModel

        base, controlnet = check_diffusers_dir(base), check_controlnet_dir(controlnet)
        _check_fits(read_config(base / "unet"), read_config(controlnet), base, controlnet)
        model = ControlNetModel.from_pretrained(controlnet, local_files_only=True, dtype=device_and_dtype(device)[1])
        pipe = load_pipeline(AutoPipelineForText2Image, base, device, controlnet=model)
        control_type = control_type or guess_control_type(controlnet)
        return cls(pipe, name=f"{base} + {controlnet}", control_type=control_type, **kwargs)

    @classmethod
    def from_pipeline(
        cls, pipeline: Any, controlnet: Any, control_type: str = "custom", **kwargs: Any
    ) -> ControlNetPainter:
        """Compose a loaded SD/SDXL text-to-image pipeline and ``ControlNetModel``, sharing weights."""
        from diffusers import AutoPipelineForText2Image

        names = type(pipeline).__name__, type(controlnet).__name__
        _check_fits(pipeline.unet.config, controlnet.config, *names)
        pipe = AutoPipelineForText2Image.from_pipe(pipeline, controlnet=controlnet)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe.to(pipeline.device, pipeline.dtype), control_type=control_type, **kwargs)

    def describe(self) -> str:
        return f"{self.name} ({type(self.pipeline).__name__}, {self.control_type}, {self.pipeline.device})"

    def paint(
        self,
        control_image: ImageSource,
        prompt: str,
        settings: PaintSettings = PaintSettings(),
        conditioning_scale: float = 1.0,
        progress: ProgressCallback | None = None,
        from_photo: bool = False,
    ) -> ControlPainting:
        """Paint ``prompt`` following ``control_image`` (a path, bytes or PIL image).

        ``conditioning_scale`` weighs the ControlNet (0: plain text-to-image).
        ``from_photo`` computes the control map from a photo with the detector
        for this ControlNet's kind instead of using the image as is.
        """
        if not (math.isfinite(conditioning_scale) and conditioning_scale >= 0):
            raise InvalidInputError(f"conditioning_scale must be a number >= 0, got {conditioning_scale}")
        source = open_image(control_image)
        width, height = _output_size(source.size, settings)
        if source.size != (width, height):
            source = source.resize((width, height), Image.Resampling.LANCZOS)
        control = self._detect(source) if from_photo else source
        settings = replace(settings, width=width, height=height)

        embeddings = self.encoder.encode(prompt, settings.negative_prompt)
        result = self.pipeline(
            **embeddings.pipeline_kwargs(),
            image=control,
            controlnet_conditioning_scale=float(conditioning_scale),
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance,
            width=width,
            height=height,
            num_images_per_prompt=settings.num_images,
            generator=torch.Generator(device="cpu").manual_seed(settings.seed),
            **progress_kwargs(progress),
        )
        return ControlPainting(
            result.images, prompt, settings, self.name, prompt_tokens=embeddings.tokens, control=control,
            control_type=self.control_type, control_source=self.control_type if from_photo else "map",
            conditioning_scale=float(conditioning_scale),
        )

    def _detect(self, photo: Image.Image) -> Image.Image:
        detector = DETECTORS.get(self.control_type)
        if detector is None:
            raise InvalidInputError(
                f"llmga has no built-in detector for {self.control_type} ControlNets (only for "
                f"{', '.join(DETECTORS)}); pass a ready {self.control_type} map as the control image"
            )
        return detector(photo)


def _output_size(control_size: tuple[int, int], settings: PaintSettings) -> tuple[int, int]:
    """Width and height from the settings (a missing side keeps the control's aspect), multiples of 8."""
    cw, ch = control_size
    width, height = settings.width, settings.height
    if width is None and height is None:
        width, height = cw, ch
    elif height is None:
        height = width * ch / cw
    elif width is None:
        width = height * cw / ch
    return size_multiple_of((width, height), 8)


def _check_fits(unet: Any, controlnet: Any, base_name: Any, controlnet_name: Any) -> None:
    """Refuse a ControlNet made for another base family, or an inpainting base, before loading weights."""
    if unet.get("in_channels", 4) != 4:
        raise InvalidInputError(
            f"the base {base_name} is not a text-to-image model (its UNet takes {unet['in_channels']} "
            "channels, e.g. an inpainting model); ControlNet painting needs an SD 1.x/2.x or SDXL "
            "text-to-image base"
        )
    dims = unet.get("cross_attention_dim"), controlnet.get("cross_attention_dim")
    if dims[0] != dims[1]:
        raise InvalidInputError(
            f"the ControlNet {controlnet_name} was made for a base with cross-attention dim {dims[1]} "
            f"(768: SD 1.x, 1024: SD 2.x, 2048: SDXL), but {base_name} has {dims[0]}; pick a matching pair"
        )
