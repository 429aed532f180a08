"""``llmga serve``: the studio's HTTP API (and web app) on one port."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Annotated, Any

import typer

from ..errors import InvalidInputError
from ..settings import Limits, ServeConfig, default_data_dir
from .options import AssistantOptions, assistant_options
from .root import app


@app.command()
@assistant_options
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port, printed at start).")] = 7860,
    data_dir: Annotated[str | None, typer.Option(
        "--data-dir", help="Folder for sessions and images (or sqlite:///FOLDER). Default: ~/.local/share/llmga/studio."
    )] = None,
    token: Annotated[str | None, typer.Option(
        envvar="LLMGA_TOKEN", help="API token clients send as 'Authorization: Bearer TOKEN'.")] = None,
    workers: Annotated[int, typer.Option(help="Painting workers (each loads its own copy of the models).")] = 1,
    max_pending: Annotated[int, typer.Option(help="Jobs queued or running before new ones get 429.")] = 8,
    max_upload_mb: Annotated[float, typer.Option(help="Largest uploaded image file, in MiB.")] = 16.0,
    max_upload_pixels: Annotated[int, typer.Option(help="Largest uploaded image, in pixels.")] = 4096 * 4096,
    factory: Annotated[str | None, typer.Option(
        help="module:function that returns an Assistant (instead of the model options).")] = None,
    web: Annotated[bool, typer.Option(help="Serve the web app at /ui (needs gradio).")] = True,
    *,
    opts: AssistantOptions,
) -> None:
    """Serve the studio: an OpenAI-compatible HTTP API with sessions that survive restarts and crashes."""
    limits = Limits(max_image_bytes=int(max_upload_mb * 2**20), max_image_pixels=max_upload_pixels,
                    max_body_bytes=max(Limits().max_body_bytes, int(max_upload_mb * 2**20 * 2.8)))
    config = ServeConfig(host=host, port=port, data=data_dir or default_data_dir(), token=token, workers=workers,
                         max_pending=max_pending, limits=limits, web=web)
    from ..serve.server import run_server

    run_server(config, _factory(factory, opts))


def _factory(path: str | None, opts: AssistantOptions) -> Callable[[], Any]:
    """The assistant builder: ``--factory`` if given, else the model options (or the default profile)."""
    if path is not None:
        module, _, name = path.partition(":")
        if not module or not name:
            raise InvalidInputError(f"--factory takes module:function, got {path!r}")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise InvalidInputError(f"cannot load the factory {path}: {exc}") from exc
    return opts.build
