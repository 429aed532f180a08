"""``llmga chat``: an interactive conversation in the terminal."""

from __future__ import annotations

import typer

from ..errors import InvalidInputError, LLMGAError
from .options import AssistantOptions, assistant_options
from .output import describe, report, say, show_prompt
from .root import app

CHAT_HELP = """Type a message and press Enter. Before a message you can attach:
  /image PATH          an image (a question about it, an edit, 'something like this', ...)
  /mask PATH           a mask (white = repaint) for the attached or the last image: inpainting
  /control PATH        a control map for ControlNet (/control PATH photo: canny edges of a photo)
  /outpaint L R T B    extend the attached or last image by pixels per side (or /outpaint 16:9)
  /expand WxH          grow a picture to WIDTHxHEIGHT step by step
  /task NAME           force the task: generate, inpaint, outpaint, edit, similar, controlnet, expand
  /source TEXT         the description of an uploaded image you are editing
Other commands: /undo (take back the last exchange), /reset (new conversation), /quit (or Ctrl-D)."""


def attach(request, command: str, arg: str) -> str:
    """Apply one attach-command to the pending request; return what to tell the user."""
    from ..images import load_image
    from ..masks import load_mask
    from ..tasks import Outpaint, parse_size

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


@app.command()
@assistant_options
def chat(*, opts: AssistantOptions) -> None:
    """An interactive conversation: replies stream, the task and prompts are shown, images saved."""
    from ..conversation import Conversation
    from ..tasks import TurnRequest

    assistant = opts.build()
    describe(assistant)
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
                assistant.conversation, request = Conversation.for_brain(assistant.brain), TurnRequest()
                typer.echo("new conversation")
            elif command == "/undo":
                assistant.conversation.undo()
                typer.echo("last exchange taken back")
            elif command.startswith("/"):
                typer.echo(attach(request, command, arg.strip()))
            else:
                pending, request = request, TurnRequest()
                images = [pending.image] if pending.image is not None else []
                say("assistant> ")
                result = assistant.chat(line, images, on_text=say, on_prompt=show_prompt, request=pending,
                                        on_route=lambda r: say(f"[task: {r.task.value}] "))
                say("\n")
                report(result)
        except LLMGAError as exc:
            typer.echo(f"error: {exc}", err=True)
        except KeyboardInterrupt:
            typer.echo("\n(interrupted)", err=True)
