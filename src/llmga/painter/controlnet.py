"""ControlNet painting: a prompt plus a control image (edges, depth, pose, ...) that fixes the layout.

:class:`ControlNetPainter` composes a Stable Diffusion base (1.x/2.x, or XL)
with a diffusers ``ControlNetModel`` into ``StableDiffusionControlNetPipeline``
(or ``StableDiffusionXLControlNetPipeline``), from two local directories or
from objects already loaded. Prompts of any length go through the
:class:`~llmga.painter.long_prompt.LongPromptEncoder`.

Several ControlNets can steer one painting at once (diffusers'
``MultiControlNetModel``), each with its own control image and weight.

A control image is either a map the user already has (an edge, depth, pose
... image, used as is) or, with ``from_photo=True``, computed from a photo by
the detector for the ControlNet's kind. The built-in detectors need no
weights (:data:`DETECTORS`): ``canny`` (:func:`canny_edges`), ``tile`` (the
photo softened, as tile ControlNets read it) and ``recolor`` (its
luminance); depth, pose, segmentation and the rest need a detector model, so
their maps are given as they are. The output size comes from the settings,
else from the (first) control image (rounded to multiples of 8); control
images are resized (stretched if the aspect differs) to the output size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..checkpoints import check_diffusers_dir, has_weights, read_config
from ..errors import InvalidInputError, ModelNotFoundError
from ..images import ImageSource, open_image, size_multiple_of
from ..settings import DEFAULT_MAX_PROMPT_TOKENS, PaintSettings, RuntimeSettings
from .long_prompt import LongPromptEncoder
from .runtime import device_and_dtype, load_pipeline, place, prepared, progress_kwargs
from .text_to_image import Painting, ProgressCallback

CONTROLNET_HOWTO = (
    "A ControlNet is a diffusers ControlNetModel directory (config.json plus "
    "diffusion_pytorch_model.safetensors), e.g. one written by `controlnet.save_pretrained(DIR)` or "
    "`huggingface-cli download lllyasviel/sd-controlnet-canny --local-dir DIR` (SD 1.5; for SDXL e.g. "
    "diffusers/controlnet-canny-sdxl-1.0) on a machine with internet."
)

#: kinds of ControlNet recognised in a directory name (anything else is "custom")
CONTROL_TYPES = ("canny", "depth", "normal", "openpose", "pose", "scribble", "lineart", "softedge", "hed",
                 "mlsd", "seg", "tile", "inpaint", "shuffle", "recolor")


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


def soften(photo: ImageSource, factor: int = 4) -> Image.Image:
    """What a tile ControlNet reads: the photo scaled down by ``factor`` and back up (its detail is for the model)."""
    image = open_image(photo)
    small = image.resize((max(1, image.width // factor), max(1, image.height // factor)), Image.Resampling.BICUBIC)
    return small.resize(image.size, Image.Resampling.BICUBIC)


def luminance(photo: ImageSource) -> Image.Image:
    """What a recolor ControlNet reads: the photo's luminance as a grey RGB image."""
    return open_image(photo).convert("L").convert("RGB")


#: control-map detectors by ControlNet kind, for ``paint(..., from_photo=True)``; none needs weights
DETECTORS: dict[str, Callable[[Image.Image], Image.Image]] = {"canny": canny_edges, "tile": soften,
                                                              "recolor": luminance}


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
    """A :class:`Painting` steered by control images, which it keeps (``control``: the first)."""

    control: Image.Image | None = None
    control_type: str = "custom"
    control_source: str = "map"  # "map": given as is; else the detector that made it from a photo
    conditioning_scale: float | list[float] = 1.0
    controls: list[Image.Image] = field(default_factory=list)

    def metadata(self, index: int = 0) -> dict[str, Any]:
        return {
            **super().metadata(index),
            "task": "controlnet",
            "control_type": self.control_type,
            "control_source": self.control_source,
            "conditioning_scale": self.conditioning_scale,
        }


class ControlNetPainter:
    """Paints a prompt of any length following control images, with a diffusers ControlNet pipeline
    (one ControlNet or several: ``control_types`` has one kind per net)."""

    def __init__(
        self,
        pipeline: Any,
        name: str = "",
        control_type: str | Sequence[str] = "custom",
        max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
    ) -> None:
        if getattr(pipeline, "controlnet", None) is None:
            raise InvalidInputError(
                f"{type(pipeline).__name__} has no ControlNet; use ControlNetPainter.from_pipeline"
            )
        self.pipeline = pipeline
        self.name = name or type(pipeline).__name__
        nets = getattr(pipeline.controlnet, "nets", [pipeline.controlnet])
        kinds = [control_type] if isinstance(control_type, str) else list(control_type)
        self.control_types = kinds * len(nets) if len(kinds) == 1 else kinds
        if len(self.control_types) != len(nets):
            raise InvalidInputError(f"{len(nets)} ControlNets but {len(kinds)} control types")
        self.encoder = LongPromptEncoder.from_pipeline(pipeline, max_tokens=max_prompt_tokens)

    @property
    def control_type(self) -> str:
        """The kind of each ControlNet, joined by "+" (``canny+depth``)."""
        return "+".join(self.control_types)

    @classmethod
    def load(
        cls,
        base: str | Path,
        controlnet: str | Path | Sequence[str | Path],
        control_type: str | Sequence[str] | None = None,
        device: str | None = None,
        runtime: RuntimeSettings | None = None,
        **kwargs: Any,
    ) -> ControlNetPainter:
        """Load a Stable Diffusion (1.x/2.x or XL) base and one or more ControlNet directories made for it.

        ``control_type`` None guesses each kind from its ControlNet's directory name.
        """
        from diffusers import ControlNetModel

        from .single_file import is_single_file

        paths = [controlnet] if isinstance(controlnet, (str, Path)) else list(controlnet)
        base, paths = check_diffusers_dir(base), [check_controlnet_dir(p) for p in paths]
        unet = None if is_single_file(base) else read_config(base / "unet")
        for path in paths:
            if unet is not None:
                _check_fits(unet, read_config(path), base, path)
        runtime = runtime or RuntimeSettings()
        dtype = device_and_dtype(device or runtime.painter_device, runtime.dtype)[1]
        models = [ControlNetModel.from_pretrained(p, local_files_only=True, dtype=dtype) for p in paths]
        pipe = load_pipeline("text2image", base, device, runtime,
                             controlnet=models[0] if len(models) == 1 else models)
        if unet is None:
            for path, model in zip(paths, models):
                _check_fits(pipe.unet.config, model.config, base, path)
        kinds = control_type or [guess_control_type(p) for p in paths]
        return cls(pipe, name=f"{base} + {' + '.join(map(str, paths))}", control_type=kinds, **kwargs)

    @classmethod
    def from_pipeline(
        cls, pipeline: Any, controlnet: Any, control_type: str | Sequence[str] = "custom", **kwargs: Any
    ) -> ControlNetPainter:
        """Compose a loaded SD/SDXL text-to-image pipeline and one or more ``ControlNetModel``s, sharing weights."""
        from diffusers import AutoPipelineForText2Image

        nets = list(controlnet) if isinstance(controlnet, (list, tuple)) else [controlnet]
        for net in nets:
            _check_fits(pipeline.unet.config, net.config, type(pipeline).__name__, type(net).__name__)
        pipe = AutoPipelineForText2Image.from_pipe(pipeline, controlnet=nets[0] if len(nets) == 1 else nets)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe.to(pipeline.device, pipeline.dtype), control_type=control_type, **kwargs)

    @classmethod
    def attach(
        cls, painter: Any, controlnets: Sequence[Path], runtime: RuntimeSettings, **kwargs: Any
    ) -> ControlNetPainter:
        """ControlNets (checked directories) on a loaded text-to-image painter, sharing its pipeline's weights."""
        from diffusers import AutoPipelineForText2Image, ControlNetModel

        dtype = painter.pipeline.dtype
        models = [ControlNetModel.from_pretrained(p, local_files_only=True, dtype=dtype) for p in controlnets]
        for path, model in zip(controlnets, models):
            _check_fits(painter.pipeline.unet.config, model.config, painter.name, path)
        pipe = AutoPipelineForText2Image.from_pipe(painter.pipeline, controlnet=models[0] if len(models) == 1 else models)
        pipe.set_progress_bar_config(disable=True)
        if runtime.offload == "none":
            pipe = pipe.to(painter.pipeline.device)
        else:
            place(pipe, str(painter.pipeline.device), runtime)
        return cls(pipe, name=f"{painter.name} + {' + '.join(map(str, controlnets))}",
                   control_type=[guess_control_type(p) for p in controlnets], **kwargs)

    def describe(self) -> str:
        return f"{self.name} ({type(self.pipeline).__name__}, {self.control_type}, {self.pipeline.device})"

    def paint(
        self,
        control_image: ImageSource | Sequence[ImageSource],
        prompt: str,
        settings: PaintSettings = PaintSettings(),
        conditioning_scale: float | Sequence[float] = 1.0,
        progress: ProgressCallback | None = None,
        from_photo: bool = False,
    ) -> ControlPainting:
        """Paint ``prompt`` following ``control_image`` (a path, bytes or PIL image; or one per ControlNet).

        One image for several ControlNets serves them all (each with its own
        detector when ``from_photo``). ``conditioning_scale`` weighs the
        ControlNets (one number for all, or one each; 0: plain text-to-image).
        ``from_photo`` computes each control map from a photo with the detector
        for its ControlNet's kind instead of using the image as is.
        """
        n = len(self.control_types)
        sources = list(control_image) if isinstance(control_image, (list, tuple)) else [control_image] * n
        scales = list(conditioning_scale) if isinstance(conditioning_scale, (list, tuple)) else [conditioning_scale] * n
        if len(sources) != n or len(scales) != n:
            raise InvalidInputError(f"this painter has {n} ControlNets ({self.control_type}): give one control image "
                                    f"and one conditioning scale for all, or one of each per ControlNet")
        if not all(math.isfinite(s) and s >= 0 for s in scales):
            raise InvalidInputError(f"conditioning_scale must be numbers >= 0, got {conditioning_scale}")
        images = [open_image(source) for source in sources]
        width, height = _output_size(images[0].size, settings)
        images = [im if im.size == (width, height) else im.resize((width, height), Image.Resampling.LANCZOS)
                  for im in images]
        controls = [self._detect(im, kind) for im, kind in zip(images, self.control_types)] if from_photo else images
        settings = replace(settings, width=width, height=height)
        scale = float(scales[0]) if n == 1 else [float(s) for s in scales]

        with prepared(self.pipeline, settings) as pipeline:
            embeddings = self.encoder.encode(prompt, settings.negative_prompt)
            result = pipeline(
                **embeddings.pipeline_kwargs(),
                image=controls[0] if n == 1 else controls,
                controlnet_conditioning_scale=scale,
                num_inference_steps=settings.steps,
                guidance_scale=settings.guidance,
                width=width,
                height=height,
                num_images_per_prompt=settings.num_images,
                generator=torch.Generator(device="cpu").manual_seed(settings.seed),
                **progress_kwargs(progress),
            )
        return ControlPainting(
            result.images, prompt, settings, self.name, prompt_tokens=embeddings.tokens, control=controls[0],
            control_type=self.control_type, control_source=self.control_type if from_photo else "map",
            conditioning_scale=scale, controls=controls,
        )

    def _detect(self, photo: Image.Image, kind: str) -> Image.Image:
        detector = DETECTORS.get(kind)
        if detector is None:
            raise InvalidInputError(
                f"llmga has no built-in detector for {kind} ControlNets (only for "
                f"{', '.join(DETECTORS)}); pass a ready {kind} map as the control image"
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
