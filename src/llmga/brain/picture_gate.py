"""A multimodal brain whose eye answers only the turns that show it a picture the user gave.

A LLaVA-format assistant trained on a small budget reads pictures, but its training moves the language model
it was built on: ``world-llava``'s eye keeps fewer of a request's words than ``gemma3-world``, the text
assistant under it (docs/world-experiments.md, runs C to E). :class:`PictureGatedBrain` keeps both: a turn
whose shown picture is in a user message (an upload, or the masked view of one) goes to the eye; every other
turn goes to the text brain, with the pictures left out. A picture the assistant painted is already in the
conversation as the prompt it was painted from, so the text brain reads it from there. (InternLM-XComposer2's
Partial LoRA applies its vision LoRA to picture tokens alone for the same reason; this gate works on whole
turns, so neither model changes.)

An adapter's ``llmga_base.json`` asks for the gate with ``"text_turns": SPEC``, the brain for the other turns
(:func:`llmga.brain.load_brain` builds it). The eye is loaded on the first turn that needs it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence

from ..conversation import Message
from .base import Brain, BrainRequest, keeps_scripts, plain_messages


class PictureGatedBrain:
    """``text`` answers turns without an uploaded picture; ``eye`` (a multimodal brain, made by ``load_eye`` when
    first needed) answers the rest."""

    multimodal = True

    def __init__(self, text: Brain, load_eye: Callable[[], Brain], name: str = "", text_name: str = "") -> None:
        self.text = text
        self._load_eye = load_eye
        self._eye: Brain | None = None
        self._lock = threading.Lock()
        self.name = name or getattr(text, "name", "")
        self.text_name = text_name or getattr(text, "name", "its text brain")
        self.system_prompt = getattr(text, "system_prompt", None)
        self.end_markers = tuple(getattr(text, "end_markers", ()))
        self.keeps_scripts = keeps_scripts(text)

    @property
    def eye(self) -> Brain:
        """The multimodal brain, loaded on first use."""
        with self._lock:
            if self._eye is None:
                self._eye = self._load_eye()
                self.end_markers = tuple(dict.fromkeys((*self.end_markers, *self._eye.end_markers)))
            return self._eye

    def describe(self) -> str:
        return (f"{self.name} (multimodal: its eye reads the pictures the user gives, loaded on the first; "
                f"{self.text_name} answers the other turns)")

    def stream(self, request: BrainRequest) -> Iterator[str]:
        if request.images and shows_upload(request.messages):
            yield from self.eye.stream(request)
        else:
            text_only = dataclasses.replace(request, messages=plain_messages(request.messages), images=())
            yield from self.text.stream(text_only)


def shows_upload(messages: Sequence[Message]) -> bool:
    """Whether a picture placeholder of ``messages`` is in a user message (not one the assistant painted)."""
    return any(m["role"] == "user" and not isinstance(m["content"], str)
               and any(part.get("type") == "image" for part in m["content"]) for m in messages)
