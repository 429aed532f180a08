"""The interface every brain (the assistant's language model) implements.

A brain takes a :class:`BrainRequest` (chat messages, and images for
multimodal brains) and returns the assistant's raw text. It never parses
generation tags: that is ``llmga.protocol``'s job.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from ..conversation import Message
from ..errors import BrainTimeoutError, Cancelled
from ..settings import SamplingSettings


@dataclass(frozen=True)
class BrainRequest:
    """What a brain is asked.

    ``messages`` is the whole conversation, system prompt first. ``images`` are
    the images the messages refer to, in order (one per image placeholder).
    ``prefill`` is text the assistant's turn is forced to start with; it is
    part of the returned text. A brain that can stops writing soon after
    ``stop`` is set (nobody reads the rest). ``scripts``, where set, are the
    only letter scripts the reply may use ("LATIN", "CJK": :func:`llmga.retry.scripts`);
    a brain whose ``keeps_scripts`` is true keeps to them (the local ones: :mod:`llmga.brain.scripts`);
    a chat server ignores them. ``prompt_form``, where set, is the form the text inside a generation tag takes
    (:func:`llmga.brain.forms.fits`); the local brains keep to it (:mod:`llmga.brain.forms`), a chat server
    ignores it.
    """

    messages: Sequence[Message]
    images: Sequence[Image.Image] = ()
    settings: SamplingSettings = field(default_factory=SamplingSettings)
    prefill: str = ""
    stop: threading.Event | None = field(default=None, compare=False)
    scripts: frozenset[str] | None = None
    prompt_form: Any = None


@runtime_checkable
class Brain(Protocol):
    """A chat model that writes the assistant's turn.

    A brain fine-tuned under a system prompt of its own may say so in a
    ``system_prompt`` attribute (:meth:`llmga.conversation.Conversation.for_brain`).
    """

    #: whether the brain accepts images
    multimodal: bool
    #: extra end-of-turn markers this model may emit, for the protocol parser
    end_markers: tuple[str, ...]

    def stream(self, request: BrainRequest) -> Iterator[str]:
        """Yield the reply text in pieces as it is produced."""
        ...

    def describe(self) -> str:
        """A one-line human description of the model (for logs and the CLI)."""
        ...


def keeps_scripts(brain: Brain) -> bool:
    """Whether ``brain`` keeps a reply to the scripts a request names (:attr:`BrainRequest.scripts`)."""
    return bool(getattr(brain, "keeps_scripts", False))


def plain_messages(messages: Sequence[Message]) -> list[Message]:
    """``messages`` with their picture placeholders left out, each content a plain string (for a text-only model)."""
    return [{"role": m["role"], "content": m["content"] if isinstance(m["content"], str)
             else "".join(part.get("text", "") for part in m["content"] if part.get("type") == "text")}
            for m in messages]


def complete(brain: Brain, request: BrainRequest) -> str:
    """Run ``brain`` to the end of its reply and return the whole text."""
    return "".join(brain.stream(request))


def stream_within(brain: Brain, request: BrainRequest, seconds: float | None = None,
                  stop: threading.Event | None = None) -> Iterator[str]:
    """``brain.stream(request)``, given up at once when ``stop`` is set or the reply takes over ``seconds``.

    The brain runs in a helper thread, so a brain that hangs (a server that
    sends nothing, a model that will not end) cannot hold the caller: it gets
    :class:`~llmga.errors.Cancelled` or :class:`~llmga.errors.BrainTimeoutError`
    within a tenth of a second, and the brain is told to stop (``request.stop``).
    """
    if seconds is None and stop is None:
        yield from brain.stream(request)
        return
    leave = threading.Event()
    pieces: queue.Queue = queue.Queue()

    def pump() -> None:
        chunks = brain.stream(dataclasses.replace(request, stop=leave))
        try:
            for chunk in chunks:
                if leave.is_set():
                    break
                pieces.put(("chunk", chunk))
        except BaseException as exc:  # handed to the reading thread
            pieces.put(("error", exc))
        else:
            pieces.put(("end", None))
        finally:
            chunks.close()

    threading.Thread(target=pump, name="llmga-brain", daemon=True).start()
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while True:
            if stop is not None and stop.is_set():
                raise Cancelled("the turn was cancelled")
            wait = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if wait <= 0:
                raise BrainTimeoutError(f"the brain took longer than {seconds:g} s for its reply; it was stopped")
            try:
                kind, value = pieces.get(timeout=wait)
            except queue.Empty:
                continue
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        leave.set()
