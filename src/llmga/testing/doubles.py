"""Test doubles: brains and a painter whose behaviour is known, and a live server for an app.

- :class:`ScriptedBrain` answers with scripted replies and keeps the requests;
  :class:`EchoBrain` answers every request with one sentence and the user's
  words as the generation prompt (streamed in small pieces);
- :class:`SlowPainter` paints a flat colour after ``delay`` seconds per step,
  reporting progress like a diffusion painter (so a test can stop a server in
  the middle of a generation);
- :func:`live_server` runs an app with uvicorn on 127.0.0.1 at a free port.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image

from ..assistant import Assistant
from ..brain.base import BrainRequest
from ..painter.text_to_image import Painting
from ..settings import PaintSettings


class ScriptedBrain:
    """A brain whose replies are scripted; it keeps every request it was sent in ``requests``.

    The k-th request gets ``replies[k]`` (the last one repeats); a reply may be a
    function of the :class:`~llmga.brain.BrainRequest`. The text streams after
    the request's prefill, ``chunk`` characters at a time (``delay`` seconds
    apart). ``fail`` is raised instead of answering once ``fail_after`` requests
    have been answered.
    """

    end_markers: tuple[str, ...] = ("<|im_end|>",)

    def __init__(self, *replies: str | Callable[[BrainRequest], str], multimodal: bool = True,
                 name: str = "scripted", fail: BaseException | None = None, fail_after: int = 0, chunk: int = 5,
                 delay: float = 0.0) -> None:
        self.replies, self.multimodal, self.name = list(replies), multimodal, name
        self.fail, self.fail_after, self.chunk, self.delay = fail, fail_after, chunk, delay
        self.requests: list[BrainRequest] = []

    def describe(self) -> str:
        return f"{self.name} (test double)"

    def stream(self, request: BrainRequest) -> Iterator[str]:
        if self.fail is not None and len(self.requests) >= self.fail_after:
            raise self.fail
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        out = request.prefill + (reply(request) if callable(reply) else reply)
        for i in range(0, len(out), self.chunk):
            if self.delay:
                time.sleep(self.delay)
            yield out[i : i + self.chunk]


def last_user_text(request: BrainRequest) -> str:
    """The text of the request's last message (a string, or the text parts of a list)."""
    content = request.messages[-1]["content"]
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content if p.get("type") == "text")


class EchoBrain(ScriptedBrain):
    """Replies "Here is your picture." plus the user's last message as the generation prompt."""

    end_markers = ()

    def __init__(self, multimodal: bool = True, reply: str = "Here is your picture. <gen_img>{text}</gen_img>",
                 delay: float = 0.0) -> None:
        super().__init__(lambda request: reply.format(text=" ".join(last_user_text(request).split())),
                         multimodal=multimodal, name="echo brain", chunk=8, delay=delay)


class SlowPainter:
    """A text-to-image painter stand-in: ``delay`` seconds per step, a flat colour from the prompt and seed."""

    def __init__(self, delay: float = 0.0, size: int = 64, name: str = "slow-painter") -> None:
        self.delay, self.size, self.name = delay, size, name

    def describe(self) -> str:
        return f"{self.name} (test double)"

    def paint(self, prompt: str, settings: PaintSettings = PaintSettings(), progress: Any = None) -> Painting:
        for step in range(settings.steps):
            if self.delay:
                time.sleep(self.delay)
            if progress is not None:
                progress(step + 1, settings.steps)
        size = (settings.width or self.size, settings.height or self.size)
        images = [Image.new("RGB", size, _colour(prompt, settings.seed + i)) for i in range(settings.num_images)]
        return Painting(images, prompt, settings, self.name)


def double_assistant(delay: float = 0.0, steps: int = 2, multimodal: bool = True) -> Assistant:
    """An assistant of the two doubles (fast by default)."""
    return Assistant(EchoBrain(multimodal), SlowPainter(delay), paint=PaintSettings(steps=steps, seed=0))


@contextmanager
def live_server(app: Any, read_seconds: float = 60.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 at a free port, as ``llmga serve`` does; yield its base URL;
    stop it on exit."""
    import uvicorn

    from ..serve.server import uvicorn_config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    server = uvicorn.Server(uvicorn_config(app, read_seconds, timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _colour(prompt: str, seed: int) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"{seed}:{prompt}".encode()).digest()
    return digest[0], digest[1], digest[2]
