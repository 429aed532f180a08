"""What the assistant commands print: streamed text, prompts, the chosen task, saved images, errors."""

from __future__ import annotations

import sys

import typer


def say(text: str) -> None:
    """Write ``text`` at once (replies stream)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def show_prompt(prompt: str) -> None:
    say(f"\n[generation prompt] {prompt}\n")


def show_route(chosen) -> None:
    typer.echo(f"task: {chosen.task.value} ({chosen.reason})")


def describe(assistant) -> None:
    """Name the models in use."""
    if assistant.brain is not None:
        typer.echo(f"brain:   {assistant.brain.describe()}")
    typer.echo(f"painter: {assistant.painters.describe()}")


def report(result) -> None:
    """Notices, errors and the saved images of a turn."""
    for notice in result.notices:
        typer.echo(f"note: {notice}")
    for error in result.errors:
        typer.echo(f"error: {error}", err=True)
    for path in result.saved:
        typer.echo(f"image saved: {path}")


def report_one_shot(result) -> None:
    """:func:`report`, then exit 1 if a prompt could not be painted (what was painted is saved already), or 2 if
    the assistant wrote no prompt at all (it answered in words: a greeting, a thing it cannot draw)."""
    report(result)
    if result.errors:
        raise typer.Exit(1)
    if not result.reply.prompts:
        typer.echo("error: nothing was painted: the assistant answered in words (above) instead", err=True)
        raise typer.Exit(2)
