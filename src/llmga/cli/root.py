"""The ``llmga`` command tree and the one way commands join it.

Every command is a function decorated with ``@app.command()`` (top level) or
``@GROUP.command()`` on a group made by :func:`group` (``llmga train …``).
Options that several commands share are a dataclass whose fields carry their
``typer.Option``; :func:`shared_options` adds them to a command, which receives
one instance of the dataclass.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])

_SETTINGS = {"no_args_is_help": True, "pretty_exceptions_enable": False, "rich_markup_mode": None}

app = typer.Typer(
    help="LLMGA: chat with an assistant that writes generation prompts and paints them.\n\n"
    "With no config file and no --brain/--painter, everything runs on the models shipped with llmga "
    "(the offline miniature world); images are saved under ./outputs unless --out says otherwise.",
    add_completion=False,
    **_SETTINGS,
)


def group(name: str, help: str) -> typer.Typer:
    """A command group ``llmga NAME …``."""
    sub = typer.Typer(name=name, help=help, **_SETTINGS)
    app.add_typer(sub, name=name)
    return sub


def shared_options(options: type, name: str = "opts") -> Callable[[F], F]:
    """Give a command the fields of the dataclass ``options`` as options; it receives an instance as ``name``."""
    fields = dataclasses.fields(options)
    hints = typing.get_type_hints(options, include_extras=True)

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != name]
        extra = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name],
                                   default=inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default)
                 for f in fields]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            given = options(**{f.name: kwargs.pop(f.name) for f in fields})
            return func(*args, **kwargs, **{name: given})

        command.__signature__ = signature.replace(parameters=own + extra)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in own + extra}
        return command  # type: ignore[return-value]

    return decorate
