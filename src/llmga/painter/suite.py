"""The painters of one assistant, one per task, built from as few models as possible.

A text-to-image pipeline is required for everything but a dedicated
inpainting model; the rest derive from it where a dedicated model is absent:
instruction editing runs on the text-to-image pipeline itself unless an edit
painter is given (another SD checkpoint), and inpainting runs on a dedicated
inpainting model when one is given, else falls back to it (diffusers' legacy
4-channel inpainting, weaker than a 9-channel inpainting model; a notice says
so). Dedicated edit and inpainting models are checked at once and loaded on
first use, so a text-to-image request never waits for them. ControlNet needs
its own ControlNet weights. Derived painters share the base pipeline's weights
and are built on first use. A restorer (:mod:`llmga.restore`), when given,
repairs every inpainting, outpainting and growth step of the inpainting painter.
A painter that reads prompts in a form of its own says so in its folder's
``llmga_painter.json`` (the world painters: ``{"prompts": "world"}``, a name in
:data:`llmga.registry.PROMPT_READERS`); the suite takes its reader, which
:meth:`PainterSuite.read` applies to every prompt before it is painted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import registry
from ..errors import ModelNotFoundError
from ..settings import DEFAULT_MAX_PROMPT_TOKENS, RuntimeSettings
from .text_to_image import TextToImagePainter

#: beside a painter's weights, what llmga should know about it: ``{"prompts": NAME}`` (see the module docstring)
PAINTER_INFO_FILE = "llmga_painter.json"


@dataclass
class PainterSuite:
    """Painters by task; ``notices`` collects what the user should know about fallbacks."""

    text_to_image: TextToImagePainter | None = None
    inpaint_model: object | None = None
    controlnet_model: object | None = None
    edit_dir: Path | None = None
    inpaint_dir: Path | None = None
    restorer: object | None = None
    max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    notices: list[str] = field(default_factory=list)
    prompt_reader: Callable[[str], str] | None = None
    _edit: object | None = None
    _inpaint_fallback: object | None = None

    @classmethod
    def load(
        cls,
        painter: str | Path | None,
        inpaint: str | Path | None = None,
        controlnet: str | Path | Sequence[str | Path] | None = None,
        max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
        edit: str | Path | None = None,
        runtime: RuntimeSettings | None = None,
        restorer: str | Path | None = None,
        lazy: bool = False,
    ) -> PainterSuite:
        """Load the painters from directories or single files (each checked before anything loads; ``edit`` and
        ``inpaint`` load on first use; with ``lazy``, the text-to-image painter does too, its libraries imported
        in the background meanwhile). ``controlnet`` is one ControlNet directory or several (they steer
        together); they share the painter's pipeline. ``restorer`` (a ×1 restorer folder, checkpoint or shipped name) repairs
        the inpainting painter's results."""
        from ..checkpoints import check_diffusers_dir
        from .controlnet import check_controlnet_dir

        dirs = [check_diffusers_dir(p) if p else None for p in (painter, inpaint, edit)]
        nets = [controlnet] if isinstance(controlnet, (str, Path)) else list(controlnet or [])
        control_dirs = [check_controlnet_dir(c) for c in nets]
        if control_dirs and dirs[0] is None:
            raise ModelNotFoundError("a ControlNet needs a base painter (--painter) to run on")
        suite = cls(max_prompt_tokens=max_prompt_tokens, edit_dir=dirs[2], inpaint_dir=dirs[1],
                    runtime=runtime or RuntimeSettings(), prompt_reader=_prompt_reader(dirs))
        if restorer is not None:
            from ..restore import Restorer

            suite.restorer = Restorer.load(restorer)
            suite.restorer.check_scale(1)
        if dirs[0] is not None:
            suite.text_to_image = TextToImagePainter.load(dirs[0], runtime=runtime, lazy=lazy,
                                                          max_prompt_tokens=max_prompt_tokens)
        if control_dirs:
            from .controlnet import ControlNetPainter

            suite.controlnet_model = ControlNetPainter.attach(suite.text_to_image, control_dirs, suite.runtime,
                                                              max_prompt_tokens=max_prompt_tokens)
        return suite

    def read(self, prompt: str) -> str:
        """``prompt`` as these painters read it (unchanged unless a painter reads a form of its own)."""
        return self.prompt_reader(prompt) if self.prompt_reader else prompt

    def base(self, task: str) -> TextToImagePainter:
        if self.text_to_image is None:
            raise ModelNotFoundError(f"{task} needs a Stable Diffusion painter; give one with --painter DIR")
        return self.text_to_image

    @property
    def has_painter(self) -> bool:
        """Whether any painter is configured (a text-to-image or a dedicated inpainting model)."""
        return self.text_to_image is not None or self.inpaint_model is not None or self.inpaint_dir is not None

    @property
    def inpaint(self):
        """The inpainting painter: the dedicated model, else the text-to-image pipeline's legacy inpainting."""
        if self.inpaint_model is None and self.inpaint_dir is not None:
            from .inpaint import InpaintPainter

            self.inpaint_model = InpaintPainter.load(self.inpaint_dir, runtime=self.runtime,
                                                     max_prompt_tokens=self.max_prompt_tokens, restorer=self.restorer)
        if self.inpaint_model is not None:
            return self.inpaint_model
        if self._inpaint_fallback is None:
            from .inpaint import InpaintPainter

            base = self.base("inpainting")
            self._inpaint_fallback = InpaintPainter(base.pipeline, name=base.name, max_prompt_tokens=self.max_prompt_tokens,
                                                    restorer=self.restorer)
            self.notices.append(
                "no inpainting model is configured (--inpaint-painter); inpainting with the text-to-image model"
            )
        return self._inpaint_fallback

    @property
    def edit(self):
        """The instruction-editing painter: the edit painter's pipeline if one is given, else the text-to-image one."""
        if self._edit is None:
            from .edit import EditPainter

            if self.edit_dir is not None:
                self._edit = EditPainter.load(self.edit_dir, runtime=self.runtime, max_prompt_tokens=self.max_prompt_tokens)
            else:
                self._edit = EditPainter.from_painter(self.base("instruction editing"))
        return self._edit

    @property
    def controlnet(self):
        """The ControlNet painter (a ControlNet must be configured)."""
        if self.controlnet_model is None:
            raise ModelNotFoundError("ControlNet needs ControlNet weights; give them with --controlnet DIR")
        return self.controlnet_model

    def describe(self) -> str:
        """One line per configured painter."""
        if not self.has_painter:
            return "none configured - prompts are shown but not painted (use --painter DIR)"
        parts = [p.describe() for p in (self.text_to_image, self.inpaint_model, self.controlnet_model) if p]
        if self.inpaint_dir is not None and self.inpaint_model is None:
            parts.append(f"{self.inpaint_dir} (inpainting, loads on first inpainting)")
        if self.edit_dir is not None:
            parts.append(self._edit.describe() if self._edit else f"{self.edit_dir} (editing, loads on first edit)")
        if self.restorer is not None:
            parts.append(f"restorer {self.restorer.describe()}")
        return "; ".join(parts)


def _prompt_reader(dirs: Sequence[Path | None]) -> Callable[[str], str] | None:
    """The reader of the first painter among ``dirs`` whose folder names a form of prompts of its own."""
    for folder in dirs:
        info = folder / PAINTER_INFO_FILE if folder is not None else None
        if info is None or not info.is_file():
            continue
        try:
            name = json.loads(info.read_text()).get("prompts")
        except (OSError, ValueError, AttributeError) as exc:
            raise ModelNotFoundError(f"{info} is not a JSON object ({exc})") from exc
        if name not in registry.PROMPT_READERS:
            raise ModelNotFoundError(f"{info} names prompts {name!r}, which llmga does not know "
                                     f"(known: {', '.join(registry.PROMPT_READERS)})")
        return registry.resolve(registry.PROMPT_READERS[name])
    return None
