"""Running the studio: bind the port, recover the store, load the models, serve until interrupted.

From Python, :func:`run_server` takes a :class:`~llmga.settings.ServeConfig` and any
function that builds an :class:`~llmga.assistant.Assistant`; ``llmga serve`` calls it.
With ``config.broker`` no model is loaded here: turns go to ``llmga worker`` processes.
"""

from __future__ import annotations

import ctypes
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..settings import ServeConfig


def run_server(config: ServeConfig, factory: Callable[[], Any] | None,
               announce: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:
    """Open the store (recovering from any crash), load the models (``factory``: none with a broker), and
    serve until interrupted."""
    import uvicorn

    from .app import create_app

    config.check()
    return_big_buffers()
    sock = _bind(config.host, config.port)  # before loading models: a taken port fails at once
    try:
        studio = _studio(config, factory, announce)
    except BaseException:
        sock.close()
        raise

    def stop() -> None:
        studio.close()
        announce("llmga studio: stopped")

    try:
        app = create_app(studio, config, on_shutdown=stop)
        web = config.web and _mount_web(app, studio, announce)
        host, port = sock.getsockname()[:2]
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        where = f"web app {url}/ui/, " if web else ""
        turns = f", turns to the workers at {config.broker}" if config.broker else ""
        announce(f"llmga studio: {url}  ({where}API docs {url}/docs, sessions in {studio.store.describe()}, "
                 f"images in {studio.store.files_root}{turns})")
        server = uvicorn.Server(uvicorn_config(app, config.limits.read_seconds, timeout_graceful_shutdown=5))
        server.run(sockets=[sock])
    finally:
        studio.close()
        sock.close()


def uvicorn_config(app: Any, read_seconds: float, **options: Any) -> Any:
    """uvicorn's configuration for the studio: its h11 protocol with a read timeout (:mod:`.read_timeout`)."""
    import uvicorn

    from .read_timeout import protocol_with_read_timeout

    return uvicorn.Config(app, log_level="warning", http=protocol_with_read_timeout(read_seconds), **options)


def return_big_buffers(threshold: int = 2**20) -> None:
    """Make this process give buffers over ``threshold`` bytes back to the system when they are freed.

    glibc's malloc raises its mmap threshold (up to 32 MiB) as large buffers
    come and go, and then keeps freed image buffers in per-thread heaps: after a
    burst of large uploads decoded on many threads the server stays that much
    bigger. A fixed threshold (``mallopt(M_MMAP_THRESHOLD)``) ends that. No-op
    where the C library is not glibc.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, threshold)  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _studio(config: ServeConfig, factory: Callable[[], Any] | None, announce: Callable[[str], None]) -> Any:
    """Open the store, recover what a crash left, and start the studio (in-process painting, or a broker)."""
    from .store import open_store
    from .studio import Studio

    store = open_store(config.store or config.data, Path(config.data) / "images")
    try:
        if config.broker:
            from .broker_queue import BrokerJobQueue

            report = store.recover(turns=False, grace=3600)  # other processes share the store
            queue = BrokerJobQueue(config.broker, store, config.max_pending, config.limits)
            studio = Studio(store, queue, limits=config.limits, image_url_seconds=config.image_url_seconds)
        else:
            report = store.recover()
            studio = Studio.start(store, factory, config.workers, config.max_pending, config.limits,
                                  config.image_url_seconds)
    except BaseException:
        store.close()
        raise
    repaired = {k: v for k, v in report.items() if v}
    if repaired:
        announce(f"recovered the session store after an unclean stop: {repaired}")
    return studio


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


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise InvalidInputError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.listen(512)
    return sock
