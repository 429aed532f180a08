"""The ``llmga`` command."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import InvalidInputError, LLMGAError

app = typer.Typer(
    help="LLMGA: chat with an assistant that writes generation prompts and paints them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Options shared by every command that builds an assistant: (name, type, option flag, help).
_SHARED_OPTIONS = [
    ("profile", Optional[str], "--profile", "Named profile from the config file."),
    ("config", Optional[Path], "--config", "Config file (default: ~/.config/llmga/config.toml)."),
    ("brain", Optional[str], "--brain", "Model directory, .gguf file, 'smollm2', or OpenAI-compatible server URL."),
    ("brain_model", Optional[str], "--brain-model", "Model name on an OpenAI-compatible server."),
    ("painter", Optional[str], "--painter", "Stable Diffusion (1.x/2.x/XL) diffusers directory, or 'none'."),
    ("inpaint_painter", Optional[str], "--inpaint-painter", "Inpainting SD directory (else the painter's legacy inpainting)."),
    ("edit_painter", Optional[str], "--edit-painter", "SD directory for instruction edits (else the painter)."),
    ("controlnet", Optional[str], "--controlnet", "ControlNet directory made for the painter."),
    ("out", Optional[Path], "--out", "Folder for the painted images."),
    ("temperature", Optional[float], "--temperature", "Brain sampling temperature (0: greedy)."),
    ("max_new_tokens", Optional[int], "--max-new-tokens", "Most tokens the brain may write."),
    ("seed", Optional[int], "--seed", "Seed for the brain and the painter."),
    ("steps", Optional[int], "--steps", "Denoising steps."),
    ("guidance", Optional[float], "--guidance", "Classifier-free guidance scale."),
    ("width", Optional[int], "--width", "Image width (multiple of 8)."),
    ("height", Optional[int], "--height", "Image height (multiple of 8)."),
    ("negative", Optional[str], "--negative", "Negative prompt."),
    ("num_images", Optional[int], "--num-images", "Images per prompt."),
    ("max_prompt_tokens", Optional[int], "--max-prompt-tokens", "Refuse generation prompts longer than this."),
]


@dataclasses.dataclass
class AssistantOptions:
    """The shared command-line options; None means "as the profile says"."""

    profile: str | None = None
    config: Path | None = None
    brain: str | None = None
    brain_model: str | None = None
    painter: str | None = None
    inpaint_painter: str | None = None
    edit_painter: str | None = None
    controlnet: str | None = None
    out: Path | None = None
    temperature: float | None = None
    max_new_tokens: int | None = None
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    negative: str | None = None
    num_images: int | None = None
    max_prompt_tokens: int | None = None

    def build(self, need_brain: bool = True):
        """Build an Assistant from the profile with these overrides.

        Both models are checked before either loads, so a missing one fails at once.
        """
        from .brain import load_brain, resolve_brain
        from .config import load_profile
        from .models import check_diffusers_dir

        prof = load_profile(self.profile, self.config)
        sampling = _override(prof.sampling, temperature=self.temperature, max_new_tokens=self.max_new_tokens,
                             seed=self.seed)
        paint = _override(prof.paint, seed=self.seed, steps=self.steps, guidance=self.guidance, width=self.width,
                          height=self.height, negative_prompt=self.negative, num_images=self.num_images)
        painter_spec = _given(self.painter if self.painter is not None else prof.painter)
        # A profile's inpainting and edit painters belong with its painter: --painter alone replaces them all.
        inpaint_spec = _given(self.inpaint_painter or (prof.inpaint_painter if self.painter is None else None))
        edit_spec = _given(self.edit_painter or (prof.edit_painter if self.painter is None else None))
        control_spec = _given(self.controlnet or prof.controlnet)
        for spec in (painter_spec, inpaint_spec, edit_spec):
            if spec:
                check_diffusers_dir(spec)
        brain_spec = resolve_brain(self.brain or prof.brain) if need_brain else None

        from .assistant import Assistant
        from .painter.suite import PainterSuite

        painters = PainterSuite.load(painter_spec, inpaint_spec, control_spec, edit=edit_spec,
                                     max_prompt_tokens=self.max_prompt_tokens or prof.max_prompt_tokens)
        brain = None
        if brain_spec is not None:
            brain = load_brain(brain_spec, model=self.brain_model or prof.brain_model, api_key=prof.api_key)
        return Assistant(brain, painters, sampling=sampling, paint=paint, out_dir=self.out or Path(prof.out_dir))


def _given(spec: str | None) -> str | None:
    """A model spec, or None where none is given ("none" or empty says so explicitly)."""
    return None if spec in (None, "", "none") else spec


def _override(settings, **changes):
    return dataclasses.replace(settings, **{k: v for k, v in changes.items() if v is not None})


def assistant_command(func):
    """Register ``func`` as a command that also takes the shared options, handed over as ``opts``."""
    own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != "opts"]
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=Annotated[kind, typer.Option(flag, help=text)])
        for name, kind, flag, text in _SHARED_OPTIONS
    ]

    @functools.wraps(func)
    def command(*args, **kwargs):
        opts = AssistantOptions(**{name: kwargs.pop(name) for name, *_ in _SHARED_OPTIONS})
        return func(*args, opts=opts, **kwargs)

    command.__signature__ = inspect.Signature(own + shared)
    command.__annotations__ = {p.name: p.annotation for p in own + shared}
    return app.command()(command)


def _say(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _show_prompt(prompt: str) -> None:
    _say(f"\n[generation prompt] {prompt}\n")


def _report(result) -> None:
    for notice in result.notices:
        typer.echo(f"note: {notice}")
    for error in result.errors:
        typer.echo(f"error: {error}", err=True)
    for path in result.saved:
        typer.echo(f"image saved: {path}")


def _describe(assistant) -> None:
    if assistant.brain is not None:
        typer.echo(f"brain:   {assistant.brain.describe()}")
    typer.echo(f"painter: {assistant.painters.describe()}")


def _show_route(chosen) -> None:
    typer.echo(f"task: {chosen.task.value} ({chosen.reason})")


@assistant_command
def generate(
    text: Annotated[str, typer.Argument(help="What to paint.")],
    no_refine: Annotated[bool, typer.Option("--no-refine", help="Paint the text as is, without the brain.")] = False,
    *,
    opts: AssistantOptions,
) -> None:
    """One shot: the assistant refines TEXT into a detailed prompt, then it is painted."""
    assistant = opts.build(need_brain=not no_refine)
    _describe(assistant)
    result = assistant.generate(text, refine=not no_refine, on_prompt=_show_prompt)
    _report(result)


NoRefine_ = Annotated[bool, typer.Option("--no-refine", help="Use the text as the prompt, without the brain.")]


def _one_shot(opts: AssistantOptions, text: str, request, no_refine: bool, image=None) -> None:
    """Run one routed turn from a one-shot command and report it."""
    assistant = opts.build(need_brain=not no_refine)
    _describe(assistant)
    result = assistant.chat(text, [image] if image is not None else [], on_text=_say, on_prompt=_show_prompt,
                            request=request, on_route=_show_route, refine=not no_refine)
    _say("\n")
    _report(result)


@assistant_command
def inpaint(
    image: Annotated[Path, typer.Argument(help="The image to repaint.")],
    mask: Annotated[Path, typer.Argument(help="Mask of the same size: white = repaint.")],
    text: Annotated[str, typer.Argument(help="What to put there, e.g. 'a fountain'.")],
    no_refine: NoRefine_ = False,
    *,
    opts: AssistantOptions,
) -> None:
    """Repaint the masked part of IMAGE; the rest stays pixel-identical outside a thin blend band."""
    from .tasks import TurnRequest, load_image_and_mask

    picture, drawn = load_image_and_mask(str(image), str(mask))
    _one_shot(opts, text, TurnRequest(image=picture, mask=drawn, task="inpaint"), no_refine, picture)


@assistant_command
def outpaint(
    image: Annotated[Path, typer.Argument(help="The image to extend.")],
    text: Annotated[str, typer.Argument(help="What the extended picture shows.")] = "extend this image",
    left: Annotated[int, typer.Option(help="Pixels to add on the left.")] = 0,
    right: Annotated[int, typer.Option(help="Pixels to add on the right.")] = 0,
    top: Annotated[int, typer.Option(help="Pixels to add on top.")] = 0,
    bottom: Annotated[int, typer.Option(help="Pixels to add at the bottom.")] = 0,
    aspect: Annotated[Optional[str], typer.Option(help="Target aspect instead of pixels, e.g. 16:9.")] = None,
    direction: Annotated[str, typer.Option(help="With --aspect: both, left, right, top or bottom.")] = "both",
    no_refine: NoRefine_ = False,
    *,
    opts: AssistantOptions,
) -> None:
    """Extend IMAGE by pixels on any side or to an aspect ratio; the original pixels stay."""
    from .painter.images import load_image
    from .tasks import Outpaint, TurnRequest

    picture = load_image(image)
    request = TurnRequest(image=picture, outpaint=Outpaint(left, right, top, bottom, aspect, direction), task="outpaint")
    _one_shot(opts, text, request, no_refine, picture)


@assistant_command
def edit(
    image: Annotated[Path, typer.Argument(help="The image to edit.")],
    text: Annotated[str, typer.Argument(help="The instruction, e.g. 'replace the cat with a dog'.")],
    source_prompt: Annotated[Optional[str], typer.Option(help="Description of IMAGE (else the brain writes it).")] = None,
    no_refine: NoRefine_ = False,
    *,
    opts: AssistantOptions,
) -> None:
    """Edit IMAGE by an instruction: inversion, then regeneration with the target description."""
    from .painter.images import load_image
    from .tasks import TurnRequest

    picture = load_image(image)
    _one_shot(opts, text, TurnRequest(image=picture, task="edit", source_prompt=source_prompt), no_refine, picture)


@assistant_command
def similar(
    image: Annotated[Path, typer.Argument(help="The image to take after.")],
    text: Annotated[str, typer.Argument(help="The request.")] = "Generate a similar image.",
    *,
    opts: AssistantOptions,
) -> None:
    """Describe IMAGE and paint a new image like it (needs a multimodal brain)."""
    from .painter.images import load_image
    from .tasks import TurnRequest

    picture = load_image(image)
    _one_shot(opts, text, TurnRequest(image=picture, task="similar"), False, picture)


@assistant_command
def controlnet(
    control: Annotated[Path, typer.Argument(help="A control map (edges, depth, ...) or, with --from-photo, a photo.")],
    text: Annotated[str, typer.Argument(help="What to paint.")],
    from_photo: Annotated[bool, typer.Option("--from-photo", help="Compute the control map (canny edges) from a photo.")] = False,
    no_refine: NoRefine_ = False,
    *,
    opts: AssistantOptions,
) -> None:
    """Paint TEXT following a control image with the configured ControlNet (--controlnet)."""
    from .painter.images import load_image
    from .tasks import TurnRequest

    request = TurnRequest(control=load_image(control), control_from_photo=from_photo, task="controlnet")
    _one_shot(opts, text, request, no_refine)


@assistant_command
def expand(
    text: Annotated[str, typer.Argument(help="The global caption of the whole picture.")],
    size: Annotated[str, typer.Option(help="Target size WIDTHxHEIGHT, e.g. 2048x512.")],
    image: Annotated[Optional[Path], typer.Option(help="Start image (else the first window is painted).")] = None,
    no_refine: NoRefine_ = False,
    *,
    opts: AssistantOptions,
) -> None:
    """Grow a picture to any size window by window; the brain writes each step's local caption."""
    from .painter.images import load_image
    from .tasks import TurnRequest, parse_size

    picture = load_image(image) if image else None
    request = TurnRequest(image=picture, expand_to=parse_size(size), task="expand")
    _one_shot(opts, text, request, no_refine, picture)


CHAT_HELP = """Type a message and press Enter. Before a message you can attach:
  /image PATH          an image (a question about it, an edit, 'something like this', ...)
  /mask PATH           a mask (white = repaint) for the attached or the last image: inpainting
  /control PATH        a control map for ControlNet (/control PATH photo: canny edges of a photo)
  /outpaint L R T B    extend the attached or last image by pixels per side (or /outpaint 16:9)
  /expand WxH          grow a picture to WIDTHxHEIGHT step by step
  /task NAME           force the task: generate, inpaint, outpaint, edit, similar, controlnet, expand
  /source TEXT         the description of an uploaded image you are editing
Other commands: /undo (take back the last exchange), /reset (new conversation), /quit (or Ctrl-D)."""


def _chat_attach(request, command: str, arg: str) -> str:
    """Apply one attach-command to the pending request; return what to tell the user."""
    from .painter.images import load_image
    from .painter.masks import load_mask
    from .tasks import Outpaint, parse_size

    if command == "/image":
        request.image = load_image(arg)
    elif command == "/mask":
        request.mask = load_mask(arg)
    elif command == "/control":
        path, _, mode = arg.partition(" ")
        request.control, request.control_from_photo = load_image(path), mode.strip() == "photo"
    elif command == "/outpaint":
        request.outpaint = Outpaint.parse(arg)
    elif command == "/expand":
        request.expand_to, request.task = parse_size(arg), "expand"
    elif command == "/task":
        request.task = None if arg in ("", "auto") else arg
    elif command == "/source":
        request.source_prompt = arg
    else:
        raise InvalidInputError(f"unknown command {command}; type /help")
    return f"{command[1:]} set for your next message"


@assistant_command
def chat(*, opts: AssistantOptions) -> None:
    """An interactive conversation: replies stream, the task and prompts are shown, images saved."""
    from .conversation import Conversation
    from .tasks import TurnRequest

    assistant = opts.build()
    _describe(assistant)
    typer.echo(CHAT_HELP)
    request = TurnRequest()
    while True:
        try:
            line = input("\nyou> ").strip()
        except EOFError:
            typer.echo()
            return
        if not line:
            continue
        command, _, arg = line.partition(" ")
        try:
            if command == "/quit":
                return
            if command == "/help":
                typer.echo(CHAT_HELP)
            elif command == "/reset":
                assistant.conversation, request = Conversation(), TurnRequest()
                typer.echo("new conversation")
            elif command == "/undo":
                assistant.conversation.undo()
                typer.echo("last exchange taken back")
            elif command.startswith("/"):
                typer.echo(_chat_attach(request, command, arg.strip()))
            else:
                pending, request = request, TurnRequest()
                images = [pending.image] if pending.image is not None else []
                _say("assistant> ")
                result = assistant.chat(line, images, on_text=_say, on_prompt=_show_prompt, request=pending,
                                        on_route=lambda r: _say(f"[task: {r.task.value}] "))
                _say("\n")
                _report(result)
        except LLMGAError as exc:
            typer.echo(f"error: {exc}", err=True)
        except KeyboardInterrupt:
            typer.echo("\n(interrupted)", err=True)


@app.command("convert-llava")
def convert_llava(
    src: Annotated[Path, typer.Argument(help="Original-layout LLaVA/LLMGA checkpoint directory.")],
    dst: Annotated[Path, typer.Argument(help="Where to write the transformers LLaVA model.")],
    vision_tower: Annotated[Path, typer.Option("--vision-tower", help="Local CLIP vision model directory.")],
    template: Annotated[str, typer.Option("--template", help="Conversation template the model was trained with: "
                                          "vicuna_v1, llama_2 or mistral_instruct.")],
) -> None:
    """Convert a released LLaVA/LLMGA checkpoint so `--brain DST` runs it."""
    from .convert import convert_llava_checkpoint

    typer.echo(f"converted: {convert_llava_checkpoint(src, vision_tower, dst, template)}")


def _mount_subcommands() -> None:
    from .data.cli import data_app
    from .eval.cli import eval_app
    from .serve.cli import serve
    from .train.cli import train_app
    from .world.cli import world_app

    assistant_command(serve)
    app.add_typer(world_app, name="world")
    app.add_typer(train_app, name="train")
    app.add_typer(data_app, name="data")
    app.add_typer(eval_app, name="eval")


_mount_subcommands()


def main() -> None:
    """Entry point: run the app, printing llmga errors as one clear line."""
    # Library chatter (loading bars, fallback notices) is not for the user of a CLI.
    for name, value in (("TRANSFORMERS_VERBOSITY", "error"), ("DIFFUSERS_VERBOSITY", "error"),
                        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    try:
        app()
    except LLMGAError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
