"""The ``llmga`` command line: one module per command group, all joining :data:`~.app.app`.

- :mod:`.paint`: ``generate`` and the painting tasks (``inpaint``, ``outpaint``, ``edit``, ``similar``,
  ``controlnet``, ``expand``); :mod:`.restore`: ``restore``; :mod:`.chat`: ``chat``; :mod:`.serve`: ``serve``;
  :mod:`.worker`: ``worker``;
  :mod:`.convert_llava`: ``convert-llava``;
- :mod:`.data`: ``llmga data …``; :mod:`.train`: ``llmga train …``; :mod:`.eval`: ``llmga eval …``;
  :mod:`.world`: ``llmga world …``; :mod:`.index`: ``llmga index …``.

Modules here import only what their options need; each command imports its work when it runs,
so ``llmga --help`` stays fast.
"""

from __future__ import annotations

import gc
import logging
import os
import warnings

import typer

from ..errors import LLMGAError
# each module adds its commands
from . import chat, convert_llava, data, eval, eval_tables, index, paint, restore, serve, train, world, worker  # noqa: F401
from .root import app

__all__ = ["app", "main"]


def main(args: list[str] | None = None) -> None:
    """Entry point: run the app on ``args`` (default: the command line); every failure is one line and a
    non-zero exit (2: what was asked cannot be done, 1: it failed while running; ``LLMGA_DEBUG=1`` shows
    the traceback of an unexpected failure).

    Run as the process's command (no ``args``), it freezes what the command leaves out of the garbage
    collector before the interpreter ends: tracing the millions of objects torch, transformers and
    diffusers leave behind took about 1 s of every command's exit."""
    try:
        _run(args)
    finally:
        if args is None:
            gc.freeze()


def _run(args: list[str] | None) -> None:
    # Library chatter (loading bars, fallback notices, deprecations) is not for the user of a CLI.
    for name, value in (("TRANSFORMERS_VERBOSITY", "error"), ("DIFFUSERS_VERBOSITY", "error"),
                        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    try:
        code = app(args, standalone_mode=False)
    except LLMGAError as exc:
        fail(str(exc), 2)
    except typer.TyperException as exc:  # usage: a missing argument, a bad option value, an unknown command
        fail(exc.format_message(), exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("LLMGA_DEBUG"):
            raise
        fail(f"{type(exc).__name__}: {exc} (an unexpected failure; LLMGA_DEBUG=1 shows where)", 1)
    raise SystemExit(code if isinstance(code, int) else 0)


def fail(message: str, code: int) -> None:
    """Say what went wrong on one line of stderr and exit with ``code``."""
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    raise SystemExit(code)
