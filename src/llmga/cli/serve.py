"""``llmga serve``: the studio's HTTP API (and web app) on one port."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import InvalidInputError
from ..settings import Limits, ServeConfig, default_data_dir
from .options import AssistantOptions, assistant_options
from .root import app

DataDir = Annotated[Optional[str], typer.Option(
    "--data-dir", help="Folder of the images (and of the sessions, unless --store says otherwise). "
    "Default: ~/.local/share/llmga/studio.")]
Store = Annotated[Optional[str], typer.Option(
    help="Where sessions live: postgresql://USER@HOST/DB (shared by several studio processes; images stay in "
    "--data-dir, a folder they all reach). Default: SQLite in --data-dir.")]
JobTimeout = Annotated[float, typer.Option(help="Seconds a turn may run before it is stopped.")]
Broker = Annotated[Optional[str], typer.Option(
    help="redis://HOST:PORT/DB: send turns to `llmga worker` processes instead of painting here (needs --store).")]


@app.command()
@assistant_options
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port, printed at start).")] = 7860,
    data_dir: DataDir = None,
    store: Store = None,
    broker: Broker = None,
    token: Annotated[Optional[str], typer.Option(
        envvar="LLMGA_TOKEN", help="API token clients send as 'Authorization: Bearer TOKEN'.")] = None,
    workers: Annotated[int, typer.Option(help="Painting workers (each loads its own copy of the models).")] = 1,
    max_pending: Annotated[int, typer.Option(help="Jobs queued or running before new ones get 429.")] = 8,
    max_upload_mb: Annotated[float, typer.Option(help="Largest uploaded image file, in MiB.")] = 16.0,
    max_upload_pixels: Annotated[int, typer.Option(help="Largest uploaded image, in pixels.")] = 4096 * 4096,
    max_work: Annotated[float, typer.Option(
        help="Most painting one turn may ask for, in millions of pixel-steps (width x height x steps x images)."
    )] = Limits().max_work / 1e6,
    job_timeout: JobTimeout = Limits().job_seconds,
    read_timeout: Annotated[float, typer.Option(
        help="Seconds a client may take to send a request before the connection is closed.")] = Limits().read_seconds,
    allowed_host: Annotated[Optional[list[str]], typer.Option(
        help="A host name clients may reach the studio by besides loopback (repeat for more).")] = None,
    allowed_origin: Annotated[Optional[list[str]], typer.Option(
        help="An origin (https://site) whose pages may send requests that change something (repeat for more).")] = None,
    image_url_ttl: Annotated[Optional[float], typer.Option(
        help="Seconds an image URL stays valid (default: as long as its session).")] = None,
    retention_days: Annotated[Optional[float], typer.Option(
        help="Delete sessions (and their images) idle for this many days (default: keep them).")] = None,
    factory: Annotated[Optional[str], typer.Option(
        help="module:function that returns an Assistant (instead of the model options).")] = None,
    web: Annotated[bool, typer.Option(help="Serve the web app at /ui (needs gradio).")] = True,
    *,
    opts: AssistantOptions,
) -> None:
    """Serve the studio: an OpenAI-compatible HTTP API with sessions that survive restarts and crashes."""
    limits = Limits(max_image_bytes=int(max_upload_mb * 2**20), max_image_pixels=max_upload_pixels,
                    max_body_bytes=max(Limits().max_body_bytes, int(max_upload_mb * 2**20 * 2.8)),
                    max_work=int(max_work * 1e6), job_seconds=job_timeout, read_seconds=read_timeout,
                    brain_seconds=opts.brain_timeout or Limits().brain_seconds)
    config = ServeConfig(host=host, port=port, data=data_dir or default_data_dir(), store=store, broker=broker,
                         token=token, workers=workers, max_pending=max_pending, limits=limits, web=web,
                         allowed_hosts=tuple(allowed_host or ()), allowed_origins=tuple(allowed_origin or ()),
                         image_url_seconds=image_url_ttl, retention_days=retention_days)
    from ..serve.server import run_server

    run_server(config, None if broker else assistant_factory(factory, opts, Path(config.data) / "images"))  # with a broker the workers paint


def assistant_factory(path: str | None, opts: AssistantOptions, gallery: Path | None = None) -> Callable[[], Any]:
    """The assistant builder: ``--factory`` if given, else the model options (or the default profile);
    ``gallery`` is the studio's picture folder (``--library gallery``)."""
    if path is not None:
        module, _, name = path.partition(":")
        if not module or not name:
            raise InvalidInputError(f"--factory takes module:function, got {path!r}")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise InvalidInputError(f"cannot load the factory {path}: {exc}") from exc
    # The studio keeps images in its own store, and loads every painter before it serves: its workers must not
    # load models in two threads at once.
    return functools.partial(opts.build, saves=False, gallery=gallery, lazy=False)
