"""Settings for the brain and the painter (plain data, cheap to import)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import InvalidInputError

#: generation prompts longer than this many tokens are refused (8 CLIP windows)
DEFAULT_MAX_PROMPT_TOKENS = 600


@dataclass(frozen=True)
class SamplingSettings:
    """How the brain samples its reply.

    ``temperature`` 0 means greedy decoding. ``seed`` makes sampling repeatable
    (None leaves it to the backend).
    """

    temperature: float = 0.2
    top_p: float = 0.95
    max_new_tokens: int = 512
    seed: int | None = 0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise InvalidInputError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise InvalidInputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise InvalidInputError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass(frozen=True)
class PaintSettings:
    """Settings for one painting call. ``width``/``height`` None use the model's default size."""

    seed: int = 0
    steps: int = 30
    guidance: float = 7.5
    width: int | None = None
    height: int | None = None
    negative_prompt: str | None = None
    num_images: int = 1

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise InvalidInputError(f"steps must be >= 1, got {self.steps}")
        if self.num_images < 1:
            raise InvalidInputError(f"num_images must be >= 1, got {self.num_images}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (value < 8 or value % 8):
                raise InvalidInputError(f"{name} must be a positive multiple of 8, got {value}")

    def as_metadata(self) -> dict[str, Any]:
        """The settings as plain values, for image metadata."""
        return asdict(self)
