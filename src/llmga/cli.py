"""The ``llmga`` command."""

from __future__ import annotations

import dataclasses
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

# Options shared by the commands that build an assistant.
Profile_ = Annotated[Optional[str], typer.Option("--profile", help="Named profile from the config file.")]
Config_ = Annotated[Optional[Path], typer.Option("--config", help="Config file (default: ~/.config/llmga/config.toml).")]
Brain_ = Annotated[
    Optional[str],
    typer.Option("--brain", help="Model directory, .gguf file, 'smollm2', or OpenAI-compatible server URL."),
]
BrainModel_ = Annotated[Optional[str], typer.Option("--brain-model", help="Model name on an OpenAI-compatible server.")]
Painter_ = Annotated[
    Optional[str], typer.Option("--painter", help="Stable Diffusion (1.x/2.x/XL) diffusers directory, or 'none'.")
]
Out_ = Annotated[Optional[Path], typer.Option("--out", help="Folder for the painted images.")]
Temperature_ = Annotated[Optional[float], typer.Option("--temperature", help="Brain sampling temperature (0: greedy).")]
MaxNew_ = Annotated[Optional[int], typer.Option("--max-new-tokens", help="Most tokens the brain may write.")]
Seed_ = Annotated[Optional[int], typer.Option("--seed", help="Seed for the brain and the painter.")]
Steps_ = Annotated[Optional[int], typer.Option("--steps", help="Denoising steps.")]
Guidance_ = Annotated[Optional[float], typer.Option("--guidance", help="Classifier-free guidance scale.")]
Width_ = Annotated[Optional[int], typer.Option("--width", help="Image width (multiple of 8).")]
Height_ = Annotated[Optional[int], typer.Option("--height", help="Image height (multiple of 8).")]
Negative_ = Annotated[Optional[str], typer.Option("--negative", help="Negative prompt.")]
Images_ = Annotated[Optional[int], typer.Option("--num-images", help="Images per prompt.")]
MaxPrompt_ = Annotated[
    Optional[int], typer.Option("--max-prompt-tokens", help="Refuse generation prompts longer than this.")
]


def _assistant(
    profile: str | None,
    config: Path | None,
    brain: str | None,
    brain_model: str | None,
    painter: str | None,
    out: Path | None,
    sampling: dict,
    paint: dict,
    max_prompt_tokens: int | None,
    need_brain: bool = True,
):
    """Build an Assistant from a profile with command-line overrides.

    Both models are checked before either loads, so a missing one fails at once.
    """
    from .brain import load_brain, resolve_brain
    from .config import load_profile
    from .models import check_diffusers_dir

    prof = load_profile(profile, config)
    sampling_settings = dataclasses.replace(prof.sampling, **{k: v for k, v in sampling.items() if v is not None})
    paint_settings = dataclasses.replace(prof.paint, **{k: v for k, v in paint.items() if v is not None})
    painter_spec = painter if painter is not None else prof.painter
    painter_spec = None if painter_spec in (None, "", "none") else painter_spec
    painter_dir = check_diffusers_dir(painter_spec) if painter_spec else None
    brain_spec = resolve_brain(brain or prof.brain) if need_brain else None

    from .assistant import Assistant
    from .painter.text_to_image import TextToImagePainter

    painter_obj = None
    if painter_dir is not None:
        painter_obj = TextToImagePainter.load(painter_dir, max_prompt_tokens=max_prompt_tokens or prof.max_prompt_tokens)
    brain_obj = None
    if brain_spec is not None:
        brain_obj = load_brain(brain_spec, model=brain_model or prof.brain_model, api_key=prof.api_key)
    return Assistant(
        brain_obj,
        painter_obj,
        sampling=sampling_settings,
        paint=paint_settings,
        out_dir=out or Path(prof.out_dir),
    )


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


@app.command()
def generate(
    text: Annotated[str, typer.Argument(help="What to paint.")],
    no_refine: Annotated[bool, typer.Option("--no-refine", help="Paint the text as is, without the brain.")] = False,
    profile: Profile_ = None,
    config: Config_ = None,
    brain: Brain_ = None,
    brain_model: BrainModel_ = None,
    painter: Painter_ = None,
    out: Out_ = None,
    temperature: Temperature_ = None,
    max_new_tokens: MaxNew_ = None,
    seed: Seed_ = None,
    steps: Steps_ = None,
    guidance: Guidance_ = None,
    width: Width_ = None,
    height: Height_ = None,
    negative: Negative_ = None,
    num_images: Images_ = None,
    max_prompt_tokens: MaxPrompt_ = None,
) -> None:
    """One shot: the assistant refines TEXT into a detailed prompt, then it is painted."""
    assistant = _assistant(
        profile, config, brain, brain_model, painter, out,
        dict(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed),
        dict(seed=seed, steps=steps, guidance=guidance, width=width, height=height,
             negative_prompt=negative, num_images=num_images),
        max_prompt_tokens,
        need_brain=not no_refine,
    )
    _describe(assistant)
    result = assistant.generate(text, refine=not no_refine, on_prompt=_show_prompt)
    _report(result)


CHAT_HELP = """Type a message and press Enter. Commands:
  /image PATH   attach an image to your next message
  /undo         take back the last exchange
  /reset        start a new conversation
  /quit         leave (or Ctrl-D)"""


@app.command()
def chat(
    profile: Profile_ = None,
    config: Config_ = None,
    brain: Brain_ = None,
    brain_model: BrainModel_ = None,
    painter: Painter_ = None,
    out: Out_ = None,
    temperature: Temperature_ = None,
    max_new_tokens: MaxNew_ = None,
    seed: Seed_ = None,
    steps: Steps_ = None,
    guidance: Guidance_ = None,
    width: Width_ = None,
    height: Height_ = None,
    negative: Negative_ = None,
    num_images: Images_ = None,
    max_prompt_tokens: MaxPrompt_ = None,
) -> None:
    """An interactive conversation: replies stream, prompts are shown, images saved."""
    from .conversation import Conversation
    from .painter.images import load_image

    assistant = _assistant(
        profile, config, brain, brain_model, painter, out,
        dict(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed),
        dict(seed=seed, steps=steps, guidance=guidance, width=width, height=height,
             negative_prompt=negative, num_images=num_images),
        max_prompt_tokens,
    )
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
