"""The ``llmga`` command line: one module per command group, all joining :data:`~.app.app`.

- :mod:`.paint`: ``generate`` and the painting tasks (``inpaint``, ``outpaint``, ``edit``, ``similar``,
  ``controlnet``, ``expand``); :mod:`.chat`: ``chat``; :mod:`.serve`: ``serve``; :mod:`.convert_llava`: ``convert-llava``;
- :mod:`.data`: ``llmga data …``; :mod:`.train`: ``llmga train …``; :mod:`.eval`: ``llmga eval …``;
  :mod:`.world`: ``llmga world …``; :mod:`.index`: ``llmga index …``.

Modules here import only what their options need; each command imports its work when it runs,
so ``llmga --help`` stays fast.
"""

from __future__ import annotations

import logging
import os
import warnings

import typer

from ..errors import LLMGAError
from . import chat, convert_llava, data, eval, eval_tables, index, paint, serve, train, world  # noqa: F401  (each adds its commands)
from .root import app

__all__ = ["app", "main"]


def main(args: list[str] | None = None) -> None:
    """Entry point: run the app on ``args`` (default: the command line), printing llmga errors as one clear line."""
    # Library chatter (loading bars, fallback notices, deprecations) is not for the user of a CLI.
    for name, value in (("TRANSFORMERS_VERBOSITY", "error"), ("DIFFUSERS_VERBOSITY", "error"),
                        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    try:
        app(args)
    except LLMGAError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
