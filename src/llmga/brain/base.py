"""The interface every brain (the assistant's language model) implements.

A brain takes a :class:`BrainRequest` (chat messages, and images for
multimodal brains) and returns the assistant's raw text. It never parses
generation tags: that is ``llmga.protocol``'s job.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from PIL import Image

from ..conversation import Message
from ..settings import SamplingSettings


@dataclass(frozen=True)
class BrainRequest:
    """What a brain is asked.

    ``messages`` is the whole conversation, system prompt first. ``images`` are
    the images the messages refer to, in order (one per image placeholder).
    ``prefill`` is text the assistant's turn is forced to start with; it is
    part of the returned text.
    """

    messages: Sequence[Message]
    images: Sequence[Image.Image] = ()
    settings: SamplingSettings = field(default_factory=SamplingSettings)
    prefill: str = ""


@runtime_checkable
class Brain(Protocol):
    """A chat model that writes the assistant's turn."""

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


def complete(brain: Brain, request: BrainRequest) -> str:
    """Run ``brain`` to the end of its reply and return the whole text."""
    return "".join(brain.stream(request))
