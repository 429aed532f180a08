"""What the session store keeps, as plain data: sessions, turns, their images, and a turn's outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PENDING, DONE, FAILED, CANCELLED, INTERRUPTED = "pending", "done", "failed", "cancelled", "interrupted"
STATUSES = (PENDING, DONE, FAILED, CANCELLED, INTERRUPTED)
ROLES = ("input", "mask", "control", "output")


@dataclass
class ImageRef:
    """An image of a turn: what it is to the turn (``role``), its place, size and, for outputs, its prompt."""

    hash: str
    role: str
    position: int
    width: int
    height: int
    prompt: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass
class TurnRecord:
    """One exchange: what the user sent and asked for, and what came back.

    A turn that did not finish has an ``error`` (what happened) and an
    ``error_code`` (the kind of error, as in the HTTP answers: ``invalid_input``,
    ``brain_timeout``, ``cancelled``, ...).
    """

    id: str
    session_id: str
    seq: int
    status: str
    user_text: str
    request: dict[str, Any]
    reply_text: str = ""
    raw_reply: str = ""
    prompts: list[str] = field(default_factory=list)
    task: str | None = None
    route_reason: str | None = None
    notices: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error: str | None = None
    error_code: str | None = None
    created: float = 0.0
    finished: float | None = None
    undone: bool = False
    images: list[ImageRef] = field(default_factory=list)

    def images_of(self, role: str) -> list[ImageRef]:
        return [ref for ref in self.images if ref.role == role]


@dataclass
class SessionRecord:
    """A conversation; ``turns`` counts its visible (not undone) turns."""

    id: str
    title: str
    created: float
    updated: float
    parent_session: str | None = None
    parent_turn: str | None = None
    turns: int = 0


@dataclass
class TurnOutcome:
    """What a finished turn produced; ``outputs`` are (image hash, prompt, metadata) in order."""

    reply_text: str
    raw_reply: str
    prompts: list[str]
    task: str | None = None
    route_reason: str | None = None
    notices: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    outputs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
