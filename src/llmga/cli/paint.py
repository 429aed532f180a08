"""One-shot painting commands: ``generate`` and one command per painting task."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..conversation import check_message
from .options import AssistantOptions, assistant_options
from .output import describe, report_one_shot, say, show_prompt, show_route
from .root import app

NoRefine = Annotated[bool, typer.Option("--no-refine", help="Use the text as the prompt, without the brain.")]


@app.command()
@assistant_options
def generate(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What to paint.")],
    no_refine: Annotated[bool, typer.Option("--no-refine", help="Paint the text as is, without the brain.")] = False,
    *,
    opts: AssistantOptions,
) -> None:
    """One shot: the assistant refines TEXT into a detailed prompt, then it is painted."""
    check_message(text)  # before the models load
    assistant = opts.build(need_brain=not no_refine)
    describe(assistant)
    result = assistant.generate(text, refine=not no_refine, on_text=say, on_prompt=show_prompt)
    say("\n")
    report_one_shot(result)


def _one_shot(opts: AssistantOptions, text: str, request, no_refine: bool, image=None) -> None:
    """Run one routed turn from a one-shot command and report it."""
    check_message(text)  # before the models load
    assistant = opts.build(need_brain=not no_refine)
    describe(assistant)
    result = assistant.chat(text, [image] if image is not None else [], on_text=say, on_prompt=show_prompt,
                            request=request, on_route=show_route, refine=not no_refine)
    say("\n")
    report_one_shot(result)


@app.command()
@assistant_options
def inpaint(
    image: Annotated[Path, typer.Argument(metavar="IMAGE", help="The image to repaint.")],
    mask: Annotated[Path, typer.Argument(metavar="MASK", help="Mask of the same size: white = repaint.")],
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What to put there, e.g. 'a fountain'.")],
    no_refine: NoRefine = False,
    *,
    opts: AssistantOptions,
) -> None:
    """Repaint the masked part of IMAGE; the rest stays pixel-identical outside a thin blend band."""
    from ..tasks import TurnRequest, load_image_and_mask

    picture, drawn = load_image_and_mask(str(image), str(mask))
    _one_shot(opts, text, TurnRequest(image=picture, mask=drawn, task="inpaint"), no_refine, picture)


@app.command()
@assistant_options
def outpaint(
    image: Annotated[Path, typer.Argument(metavar="IMAGE", help="The image to extend.")],
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What the extended picture shows.")] = "extend this image",
    left: Annotated[int, typer.Option(help="Pixels to add on the left.")] = 0,
    right: Annotated[int, typer.Option(help="Pixels to add on the right.")] = 0,
    top: Annotated[int, typer.Option(help="Pixels to add on top.")] = 0,
    bottom: Annotated[int, typer.Option(help="Pixels to add at the bottom.")] = 0,
    aspect: Annotated[Optional[str], typer.Option(help="Target aspect instead of pixels, e.g. 16:9.")] = None,
    direction: Annotated[str, typer.Option(help="With --aspect: both, left, right, top or bottom.")] = "both",
    no_refine: NoRefine = False,
    *,
    opts: AssistantOptions,
) -> None:
    """Extend IMAGE by pixels on any side or to an aspect ratio; the original pixels stay."""
    from ..images import load_image
    from ..tasks import Outpaint, TurnRequest

    picture = load_image(image)
    request = TurnRequest(image=picture, outpaint=Outpaint(left, right, top, bottom, aspect, direction), task="outpaint")
    _one_shot(opts, text, request, no_refine, picture)


@app.command()
@assistant_options
def edit(
    image: Annotated[Path, typer.Argument(metavar="IMAGE", help="The image to edit.")],
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The instruction, e.g. 'replace the cat with a dog'.")],
    source_prompt: Annotated[Optional[str], typer.Option(help="Description of IMAGE (else the brain writes it).")] = None,
    no_refine: NoRefine = False,
    *,
    opts: AssistantOptions,
) -> None:
    """Edit IMAGE by an instruction: inversion, then regeneration with the target description."""
    from ..images import load_image
    from ..tasks import TurnRequest

    picture = load_image(image)
    _one_shot(opts, text, TurnRequest(image=picture, task="edit", source_prompt=source_prompt), no_refine, picture)


@app.command()
@assistant_options
def similar(
    image: Annotated[Path, typer.Argument(metavar="IMAGE", help="The image to take after.")],
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The request.")] = "Generate a similar image.",
    *,
    opts: AssistantOptions,
) -> None:
    """Describe IMAGE and paint a new image like it (needs a multimodal brain)."""
    from ..images import load_image
    from ..tasks import TurnRequest

    picture = load_image(image)
    _one_shot(opts, text, TurnRequest(image=picture, task="similar"), False, picture)


@app.command()
@assistant_options
def controlnet(
    control_image: Annotated[Path, typer.Argument(metavar="CONTROL", help="A control map (edges, depth, ...) or, with --from-photo, a photo.")],
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What to paint.")],
    from_photo: Annotated[bool, typer.Option("--from-photo", help="Compute the control map (canny edges) from a photo.")] = False,
    no_refine: NoRefine = False,
    *,
    opts: AssistantOptions,
) -> None:
    """Paint TEXT following a control image with the configured ControlNet (--controlnet)."""
    from ..images import load_image
    from ..tasks import TurnRequest

    request = TurnRequest(control=load_image(control_image), control_from_photo=from_photo, task="controlnet")
    _one_shot(opts, text, request, no_refine)


@app.command()
@assistant_options
def expand(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The global caption of the whole picture.")],
    size: Annotated[str, typer.Option(help="Target size WIDTHxHEIGHT, e.g. 2048x512.")],
    image: Annotated[Optional[Path], typer.Option(help="Start image (else the first window is painted).")] = None,
    no_refine: NoRefine = False,
    *,
    opts: AssistantOptions,
) -> None:
    """Grow a picture to any size window by window; the brain writes each step's local caption."""
    from ..images import load_image
    from ..tasks import TurnRequest, parse_size

    picture = load_image(image) if image else None
    request = TurnRequest(image=picture, expand_to=parse_size(size), task="expand")
    _one_shot(opts, text, request, no_refine, picture)
