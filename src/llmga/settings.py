"""Every setting llmga takes: the brain's sampling, the painter's, and the studio's (plain data, cheap to import)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
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


# -- the studio ---------------------------------------------------------------------


def default_data_dir() -> Path:
    """``$LLMGA_STUDIO_DIR``, else ``$XDG_DATA_HOME/llmga/studio`` (``~/.local/share/llmga/studio``)."""
    if os.environ.get("LLMGA_STUDIO_DIR"):
        return Path(os.environ["LLMGA_STUDIO_DIR"]).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "llmga" / "studio"


@dataclass(frozen=True)
class Limits:
    """What one request may carry and ask for; anything beyond is a 4xx answer, never a crash."""

    #: whole request body (multipart uploads, JSON with data URLs)
    max_body_bytes: int = 40 * 2**20
    #: one uploaded image file, after base64 decoding
    max_image_bytes: int = 16 * 2**20
    #: pixels of one uploaded image, read from its header before decoding
    max_image_pixels: int = 4096 * 4096
    #: characters of one message or prompt
    max_text_chars: int = 8000
    #: images per prompt
    max_images: int = 4
    #: denoising steps
    max_steps: int = 150
    #: width or height of a painting
    max_side: int = 2048
    #: seconds a request waits for its turn before answering 503 (the turn goes on; poll its job)
    wait_seconds: float = 600.0


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``llmga serve`` needs besides the assistant."""

    host: str = "127.0.0.1"
    port: int = 7860
    data: str | Path = field(default_factory=default_data_dir)
    token: str | None = None
    workers: int = 1
    max_pending: int = 8
    limits: Limits = Limits()
    model_name: str = "llmga"
    #: mount the web app at /ui (needs gradio)
    web: bool = True

    def check(self) -> None:
        """Refuse settings that would be unsafe or cannot work."""
        if not is_loopback(self.host) and not self.token:
            raise InvalidInputError(
                f"binding {self.host} makes the studio reachable from other machines; "
                "give an API token (--token or LLMGA_TOKEN) that clients send as 'Authorization: Bearer TOKEN'"
            )
        if self.workers < 1:
            raise InvalidInputError(f"workers must be at least 1, got {self.workers}")
        if self.max_pending < self.workers:
            raise InvalidInputError(f"max pending jobs ({self.max_pending}) must be at least the workers ({self.workers})")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
