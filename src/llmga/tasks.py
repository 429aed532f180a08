"""Running one generation prompt as the task the turn asked for.

:class:`TurnRequest` is what the user gave besides words (an image, a mask, a
control map, an outpainting or growth size, a task override);
:func:`paint_prompt` sends one of the assistant's prompts to the painter for
the routed task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from .errors import InvalidInputError
from .routing import Task, TurnInputs
from .settings import MAX_PAINT_SIDE, PaintSettings

if TYPE_CHECKING:  # the painters (torch) load only where painting happens
    from .painter.suite import PainterSuite

DIRECTIONS = ("both", "left", "right", "top", "bottom")
#: (current image or None, global caption, step, total steps) -> local caption
LocalCaption = Callable[[Any, str, int, int], str]


@dataclass(frozen=True)
class Outpaint:
    """How far to extend an image: pixels per side, or a target aspect (e.g. "16:9") and direction."""

    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0
    aspect: str | float | None = None
    direction: str = "both"

    def __post_init__(self) -> None:
        sides = (self.left, self.right, self.top, self.bottom)
        if any(not isinstance(v, int) or v < 0 or v > MAX_PAINT_SIDE for v in sides):
            raise InvalidInputError(f"outpainting pixels must be whole numbers from 0 to {MAX_PAINT_SIDE}, got {sides}")
        if self.aspect is None and not any(sides):
            raise InvalidInputError("outpainting needs a size: pixels for at least one side, or an aspect such as 16:9")
        if self.direction not in DIRECTIONS:
            raise InvalidInputError(
                f"outpainting direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}")

    @classmethod
    def parse(cls, text: str) -> Outpaint:
        """From "LEFT RIGHT TOP BOTTOM" (pixels) or an aspect such as "16:9"."""
        parts = text.split()
        if len(parts) == 1:
            return cls(aspect=parts[0])
        if len(parts) == 4 and all(p.isdigit() for p in parts):
            return cls(*map(int, parts))
        raise InvalidInputError(f"outpainting takes LEFT RIGHT TOP BOTTOM pixels or an aspect like 16:9, got {text!r}")

    def canvas(self, image: Image.Image, seed: int) -> Any:
        """The larger canvas, its mask and initial fill, made for the user."""
        from .painter.outpaint import outpaint_canvas, outpaint_to_aspect

        if self.aspect is not None:
            return outpaint_to_aspect(image, self.aspect, self.direction, seed=seed)
        return outpaint_canvas(image, self.left, self.right, self.top, self.bottom, seed=seed)


def parse_size(text: str) -> tuple[int, int]:
    """A WIDTHxHEIGHT size such as "2048x512" (each side from 8 to MAX_PAINT_SIDE pixels)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InvalidInputError(f"expected a size WIDTHxHEIGHT such as 2048x512, got {text[:40]!r}") from None
    if not (8 <= width <= MAX_PAINT_SIDE and 8 <= height <= MAX_PAINT_SIDE):
        raise InvalidInputError(f"a size must be 8 to {MAX_PAINT_SIDE} pixels a side, got {width}x{height}")
    return width, height


@dataclass
class TurnRequest:
    """What the user gave with a turn besides text. ``image`` is the one to work on (uploaded)."""

    image: Image.Image | None = None
    mask: Image.Image | None = None
    control: Image.Image | None = None
    control_from_photo: bool = False
    outpaint: Outpaint | None = None
    expand_to: tuple[int, int] | None = None
    task: Task | str | None = None
    source_prompt: str | None = None

    def inputs(self, has_last_image: bool) -> TurnInputs:
        """The routing view of this request."""
        return TurnInputs(
            image=self.image is not None,
            mask=self.mask is not None,
            control=self.control is not None,
            outpaint=self.outpaint is not None,
            last_image=has_last_image,
        )


def load_image_and_mask(image_path: str, mask_path: str | None) -> tuple[Image.Image, Image.Image | None]:
    """Open an image and its mask; when the image is downscaled on opening (huge), the mask follows it."""
    from .images import load_image
    from .masks import load_mask

    image = load_image(image_path)
    if mask_path is None:
        return image, None
    mask = load_mask(mask_path)
    with Image.open(image_path) as original:
        original_size = original.size
    if mask.size == original_size != image.size:
        mask = mask.resize(image.size, Image.Resampling.NEAREST)
    return image, load_mask(mask, image.size)


def masked_view(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The image with its masked region greyed out: what the assistant sees for inpainting (as in the paper)."""
    from .masks import load_mask

    grey = Image.new("RGB", image.size, (128, 128, 128))
    return Image.composite(grey, image.convert("RGB"), load_mask(mask, image.size))


def paint_prompt(
    painters: PainterSuite,
    task: Task,
    prompt: str,
    request: TurnRequest,
    target: Image.Image | None,
    settings: PaintSettings,
    progress: Any = None,
    source_prompt: Callable[[], str] | None = None,
    local_caption: LocalCaption | None = None,
) -> Any:
    """Paint ``prompt`` as ``task``; ``target`` is the image the task works on (if any).

    ``source_prompt`` gives the description of ``target`` for editing;
    ``local_caption`` writes each step's caption when growing an image. The
    painters read ``prompt`` in their own form (:meth:`PainterSuite.read`).
    """
    prompt = painters.read(prompt)
    if task in (Task.GENERATE, Task.SIMILAR, Task.ANSWER):
        return painters.base("text-to-image").paint(prompt, settings, progress)
    if task is Task.INPAINT:
        return painters.inpaint.paint(target, request.mask, prompt, settings, progress)
    if task is Task.OUTPAINT:
        from .painter.outpaint import outpaint

        return outpaint(painters.inpaint, request.outpaint.canvas(target, settings.seed), prompt, settings, progress)
    if task is Task.EDIT:
        from .painter.edit import EditSettings

        return painters.edit.edit(target, source_prompt(), prompt, EditSettings.from_paint(settings), progress)
    if task is Task.CONTROLNET:
        return painters.controlnet.paint(request.control, prompt, settings, progress=progress,
                                         from_photo=request.control_from_photo)
    if task is Task.EXPAND:
        return _expand(painters, prompt, request, target, settings, progress, local_caption)
    raise InvalidInputError(f"no painter for task {task}")


def _expand(painters: PainterSuite, prompt: str, request: TurnRequest, target: Image.Image | None,
            settings: PaintSettings, progress: Any, local_caption: LocalCaption | None) -> Any:
    from .painter.expand import expand
    from .painter.text_to_image import Painting

    if request.expand_to is None:
        raise InvalidInputError("growing an image needs a target size, e.g. 512x2048")
    step_progress = (lambda step, total, _image: progress(step, total)) if progress else None
    grown = expand(painters.inpaint, prompt, request.expand_to, settings, image=target,
                   local_caption=local_caption, text_painter=painters.text_to_image, progress=step_progress)
    return Painting([grown.image], prompt, settings, painters.inpaint.name)
