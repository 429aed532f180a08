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

from .errors import LLMGAError

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
        painter_spec = self.painter if self.painter is not None else prof.painter
        painter_dir = check_diffusers_dir(painter_spec) if painter_spec not in (None, "", "none") else None
        brain_spec = resolve_brain(self.brain or prof.brain) if need_brain else None

        from .assistant import Assistant
        from .painter.text_to_image import TextToImagePainter

        painter = None
        if painter_dir is not None:
            painter = TextToImagePainter.load(painter_dir, max_prompt_tokens=self.max_prompt_tokens or prof.max_prompt_tokens)
        brain = None
        if brain_spec is not None:
            brain = load_brain(brain_spec, model=self.brain_model or prof.brain_model, api_key=prof.api_key)
        return Assistant(brain, painter, sampling=sampling, paint=paint, out_dir=self.out or Path(prof.out_dir))


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
    if assistant.painter is None:
        typer.echo("painter: none configured - prompts are shown but not painted (use --painter DIR)")
    else:
        typer.echo(f"painter: {assistant.painter.describe()}")


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


CHAT_HELP = """Type a message and press Enter. Commands:
  /image PATH   attach an image to your next message
  /undo         take back the last exchange
  /reset        start a new conversation
  /quit         leave (or Ctrl-D)"""


@assistant_command
def chat(*, opts: AssistantOptions) -> None:
    """An interactive conversation: replies stream, prompts are shown, images saved."""
    from .conversation import Conversation
    from .painter.images import load_image

    assistant = opts.build()
    _describe(assistant)
    typer.echo(CHAT_HELP)
    attached = []
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
            if command == "/reset":
                assistant.conversation = Conversation()
                attached = []
                typer.echo("new conversation")
            elif command == "/undo":
                assistant.conversation.undo()
                typer.echo("last exchange taken back")
            elif command == "/image":
                attached.append(load_image(arg.strip()))
                typer.echo(f"attached {arg.strip()} to your next message")
            else:
                _say("assistant> ")
                result = assistant.chat(line, attached, on_text=_say, on_prompt=_show_prompt)
                attached = []
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
    from .train.cli import train_app

    app.add_typer(train_app, name="train")
    app.add_typer(data_app, name="data")


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
