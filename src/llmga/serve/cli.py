"""``llmga serve``: the studio's HTTP API (and web app) on one port.

Mount it into the main CLI with the shared model options::

    from .serve.cli import serve
    assistant_command(serve)        # llmga serve --painter DIR --brain X --port 7860

or run it alone: ``python -m llmga.serve --factory mypackage.module:make_assistant``.
From Python, :func:`run_server` takes a :class:`ServeConfig` and any
function that builds an :class:`~llmga.assistant.Assistant`.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import socket
from collections.abc import Callable
from typing import Annotated, Any

import typer

from ..errors import InvalidInputError
from .config import Limits, ServeConfig, default_data_dir

log = logging.getLogger(__name__)


def run_server(config: ServeConfig, factory: Callable[[], Any],
               announce: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:
    """Open the store (recovering from any crash), load the models, and serve until interrupted."""
    import uvicorn

    from .app import create_app
    from .store import open_store
    from .studio import Studio

    config.check()
    sock = _bind(config.host, config.port)  # before loading models: a taken port fails at once
    store = open_store(config.data)
    repaired = {k: v for k, v in store.recover().items() if v}
    if repaired:
        announce(f"recovered the session store after an unclean stop: {repaired}")
    studio = Studio.start(store, factory, config.workers, config.max_pending, config.limits)

    def stop() -> None:
        studio.close()
        announce("llmga studio: stopped")

    try:
        app = create_app(studio, config, on_shutdown=stop)
        web = config.web and _mount_web(app, studio, announce)
        host, port = sock.getsockname()[:2]
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        where = f"web app {url}/ui/, " if web else ""
        announce(f"llmga studio: {url}  ({where}API docs {url}/docs, data in {config.data})")
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
        server.run(sockets=[sock])
    finally:
        studio.close()
        sock.close()


def _mount_web(app: Any, studio: Any, announce: Callable[[str], None]) -> bool:
    """Mount the web app if Gradio is installed; say so if not."""
    try:
        import gradio  # noqa: F401

        from .web import mount_web
    except ImportError as exc:
        announce(f"the web app is off ({exc}); the API runs without it. Install it with: pip install gradio")
        return False
    mount_web(app, studio)
    app.state.web = True
    return True


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
    opts: Any = None,
) -> None:
    """Serve the studio: an OpenAI-compatible HTTP API with sessions that survive restarts and crashes."""
    limits = Limits(max_image_bytes=int(max_upload_mb * 2**20), max_image_pixels=max_upload_pixels,
                    max_body_bytes=max(Limits().max_body_bytes, int(max_upload_mb * 2**20 * 2.8)))
    config = ServeConfig(host=host, port=port, data=data_dir or default_data_dir(), token=token, workers=workers,
                         max_pending=max_pending, limits=limits, web=web)
    run_server(config, _factory(factory, opts))


def _factory(path: str | None, opts: Any) -> Callable[[], Any]:
    """The assistant builder: ``--factory`` if given, else the model options (or the default profile)."""
    if path is not None:
        module, _, name = path.partition(":")
        if not module or not name:
            raise InvalidInputError(f"--factory takes module:function, got {path!r}")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise InvalidInputError(f"cannot load the factory {path}: {exc}") from exc
    if opts is None:
        from ..cli import AssistantOptions

        opts = AssistantOptions()
    return opts.build


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise InvalidInputError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.listen(128)
    return sock


def _without_opts(func: Callable) -> Callable:
    """``func`` as a typer command on its own (the ``opts`` the main CLI supplies left out)."""
    signature = inspect.signature(func, eval_str=True)

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    command.__signature__ = signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "opts"])
    return command


def main() -> None:
    """``python -m llmga.serve``: the serve command alone, errors as one line."""
    from ..errors import LLMGAError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(_without_opts(serve))
    try:
        app()
    except LLMGAError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
