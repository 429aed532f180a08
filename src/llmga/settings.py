"""Every setting llmga takes: the brain's sampling, the painter's, and the studio's (plain data, cheap to import)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import InvalidInputError

#: generation prompts longer than this many tokens are refused (8 CLIP windows)
DEFAULT_MAX_PROMPT_TOKENS = 600
#: the largest seed (torch generators take 64-bit seeds; one bit is kept for seed + image index)
MAX_SEED = 2**63 - 1
#: the longest side of a painting anywhere (the studio's own limit, ``Limits.max_side``, is lower)
MAX_PAINT_SIDE = 8192


def check_seed(name: str, seed: int | None) -> None:
    """Refuse a seed outside 0..MAX_SEED (a torch generator cannot take it)."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise InvalidInputError(f"{name} must be between 0 and {MAX_SEED}, got {seed}")


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
        check_seed("seed", self.seed)

    def for_conversation(self, messages: Sequence[Any], prefill: str = "") -> SamplingSettings:
        """These settings with the seed mixed with the conversation's text, for sampling one reply.

        The same conversation under the same seed is answered the same way, and
        different ones draw independently: one fixed seed gives every request the
        same draws, so a world assistant would fill every unnamed attribute alike.
        Greedy decoding and no seed are left as they are.
        """
        if self.seed is None or self.temperature == 0:
            return self
        text = json.dumps([self.seed, list(messages), prefill], sort_keys=True, ensure_ascii=False, default=str)
        return replace(self, seed=int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") >> 1)


#: few-step models and the settings they were distilled for (steps, guidance, sampler, timestep spacing):
#: LCM and LCM-LoRA (LCMScheduler, 4 steps, guidance 1), SD/SDXL-Turbo (Euler ancestral, 1 step, no guidance,
#: trailing), SDXL-Lightning (Euler, 4 steps, no guidance, trailing), Hyper-SD (DDIM, 8 steps, no guidance, trailing)
FEW_STEP_PRESETS: dict[str, dict[str, Any]] = {
    "lcm": {"steps": 4, "guidance": 1.0, "sampler": "lcm", "timestep_spacing": None},
    "turbo": {"steps": 1, "guidance": 0.0, "sampler": "euler_a", "timestep_spacing": "trailing"},
    "lightning": {"steps": 4, "guidance": 0.0, "sampler": "euler", "timestep_spacing": "trailing"},
    "hyper": {"steps": 8, "guidance": 0.0, "sampler": "ddim", "timestep_spacing": "trailing"},
}
TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA to apply to the painter for a request: a ``.safetensors`` file or diffusers LoRA folder, and its weight."""

    path: str
    scale: float = 1.0

    @classmethod
    def parse(cls, text: str) -> LoraSpec:
        """``PATH`` or ``PATH:SCALE`` (e.g. ``style.safetensors:0.8``)."""
        path, sep, scale = text.rpartition(":")
        if sep and path and _is_number(scale):
            return cls(path, float(scale))
        return cls(text)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class PaintSettings:
    """Settings for one painting call. ``width``/``height`` None use the model's default size.

    ``sampler`` None keeps the painter's own scheduler (else a name from
    :data:`llmga.painter.samplers.SAMPLERS`); ``karras`` uses Karras sigmas;
    ``timestep_spacing`` None keeps the scheduler's. ``loras`` apply to this
    call only. ``preset`` names the few-step settings applied (see :meth:`with_preset`).
    ``restore`` False leaves an inpainting or outpainting unrepaired by the configured restorer.
    """

    seed: int = 0
    steps: int = 30
    guidance: float = 7.5
    width: int | None = None
    height: int | None = None
    negative_prompt: str | None = None
    num_images: int = 1
    sampler: str | None = None
    karras: bool = False
    timestep_spacing: str | None = None
    loras: tuple[LoraSpec, ...] = ()
    preset: str | None = None
    restore: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise InvalidInputError(f"steps must be >= 1, got {self.steps}")
        if self.num_images < 1:
            raise InvalidInputError(f"num_images must be >= 1, got {self.num_images}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (value < 8 or value % 8):
                raise InvalidInputError(f"{name} must be a positive multiple of 8, got {value}")
            if value is not None and value > MAX_PAINT_SIDE:
                raise InvalidInputError(f"{name}: {value} is over the limit of {MAX_PAINT_SIDE} pixels")
        check_seed("seed", self.seed)
        if self.timestep_spacing not in (None, *TIMESTEP_SPACINGS):
            raise InvalidInputError(f"timestep_spacing must be one of {', '.join(TIMESTEP_SPACINGS)}, "
                                    f"got {self.timestep_spacing!r}")
        if self.preset is not None and self.preset not in FEW_STEP_PRESETS:
            raise InvalidInputError(f"unknown few-step preset {self.preset!r}; known: {', '.join(FEW_STEP_PRESETS)}")
        # profiles and JSON give lists and tables; keep LoraSpec tuples
        object.__setattr__(self, "loras", tuple(_lora(x) for x in self.loras))

    def with_preset(self, name: str) -> PaintSettings:
        """These settings with a few-step model's steps, guidance, sampler and timestep spacing."""
        if name not in FEW_STEP_PRESETS:
            raise InvalidInputError(f"unknown few-step preset {name!r}; known: {', '.join(FEW_STEP_PRESETS)}")
        return replace(self, preset=name, **FEW_STEP_PRESETS[name])

    def as_metadata(self) -> dict[str, Any]:
        """The settings as plain values, for image metadata."""
        values = asdict(self)
        values["loras"] = [[lora.path, lora.scale] for lora in self.loras]
        return values


def _lora(value: Any) -> LoraSpec:
    if isinstance(value, LoraSpec):
        return value
    if isinstance(value, str):
        return LoraSpec.parse(value)
    if isinstance(value, dict):
        return LoraSpec(**value)
    path, scale = value
    return LoraSpec(str(path), float(scale))


#: where painters do their work: None lets llmga choose; offload "model" keeps each part on the CPU until used
OFFLOAD_MODES = ("none", "model", "sequential")
QUANTIZE_MODES = ("4bit", "8bit")
DTYPES = ("float16", "bfloat16", "float32")
#: what runs a brain trained as an adapter on a GGUF base: "auto" picks llama.cpp where it can
BRAIN_ENGINES = ("auto", "llama.cpp", "transformers")


@dataclass(frozen=True)
class RuntimeSettings:
    """Where and how the models run (chosen when they load, not per request).

    ``brain_device``/``painter_device``: "cuda", "cuda:1", "cpu", ... (None: CUDA
    when present). ``brain_quantize``: "4bit" or "8bit" loads a transformers
    brain quantized in this process (bitsandbytes). ``offload``: the painter's
    parts wait on the CPU and move to the GPU when used ("model", diffusers'
    model CPU offload; "sequential", layer by layer, slowest and smallest).
    ``vae_tiling`` decodes big images tile by tile. ``vae`` replaces the
    painter's VAE (a diffusers AutoencoderKL folder or single file).
    ``model_config``: a diffusers folder of the same family whose configs and
    tokenizers a single-file painter is built with (default: the ones llmga ships).
    ``dtype``: "float16", "bfloat16" or "float32" for both models (None: half
    precision on CUDA, bfloat16 brain / float16 painter; float32 on the CPU).
    ``brain_engine``: what runs an adapter trained on a GGUF base (the shipped
    world assistants): "llama.cpp" (merged, then written as a Q8_0 GGUF file),
    "transformers", or "auto": llama.cpp when it is installed, the architecture can
    be written and neither a CUDA device nor a dtype other than float32 asks for transformers.
    """

    brain_device: str | None = None
    brain_quantize: str | None = None
    painter_device: str | None = None
    offload: str = "none"
    vae_tiling: bool = False
    vae: str | None = None
    model_config: str | None = None
    dtype: str | None = None
    brain_engine: str = "auto"

    def __post_init__(self) -> None:
        if self.brain_engine not in BRAIN_ENGINES:
            raise InvalidInputError(f"brain_engine must be one of {', '.join(BRAIN_ENGINES)}, "
                                    f"got {self.brain_engine!r}")
        if self.dtype not in (None, *DTYPES):
            raise InvalidInputError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.offload not in OFFLOAD_MODES:
            raise InvalidInputError(f"offload must be one of {', '.join(OFFLOAD_MODES)}, got {self.offload!r}")
        if self.brain_quantize not in (None, *QUANTIZE_MODES):
            raise InvalidInputError(f"brain_quantize must be one of {', '.join(QUANTIZE_MODES)}, "
                                    f"got {self.brain_quantize!r}")


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
    #: longest side of an uploaded image, and its longest side over its shortest, read from its header
    max_image_side: int = 8192
    max_image_aspect: float = 16.0
    #: characters of one message or prompt
    max_text_chars: int = 8000
    #: images per prompt
    max_images: int = 4
    #: denoising steps
    max_steps: int = 150
    #: width or height of a painting
    max_side: int = 2048
    #: one turn's painting: width x height x steps x images (a size left to the painter counts as 1024x1024)
    max_work: int = 1024 * 1024 * 150
    #: tokens the brain may be asked to write
    max_new_tokens: int = 4096
    def max_json_bytes(self) -> int:
        """A JSON body (parsed whole in memory) may carry one image as a base64 data URL, and some text."""
        return min(self.max_body_bytes, self.max_image_bytes * 4 // 3 + 2**20)

    #: earlier exchanges an OpenAI-style request may carry, and their characters in all
    max_history_turns: int = 100
    max_history_chars: int = 200_000
    #: the most recent exchanges the brain is shown (older ones stay in the session)
    context_turns: int = 20
    #: bytes of memory that large request bodies and the images decoded from them may take at once, in all
    #: (beyond it requests wait, then get 503)
    request_memory: int = 160 * 2**20
    #: seconds a request waits for its turn before answering 503 (the turn goes on; poll its job)
    wait_seconds: float = 600.0
    #: seconds the brain may take for one reply, and a whole turn may run, before it is stopped
    brain_seconds: float = 120.0
    job_seconds: float = 900.0
    #: seconds a client may take to send a whole request (headers and body) before the connection is closed
    read_seconds: float = 60.0


#: the image formats the studio opens (no EPS, PSD, ... : fewer decoders to attack)
STUDIO_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
#: host names a token-less studio answers to (DNS rebinding gives other names to this machine)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``llmga serve`` (and ``llmga worker``) needs besides the assistant.

    ``data`` is the folder of the images (and of the SQLite session store unless
    ``store`` names another, e.g. ``postgresql://…``); ``broker`` (``redis://…``)
    sends turns to ``llmga worker`` processes instead of painting in this one.
    """

    host: str = "127.0.0.1"
    port: int = 7860
    data: str | Path = field(default_factory=default_data_dir)
    store: str | None = None
    broker: str | None = None
    token: str | None = None
    workers: int = 1
    max_pending: int = 8
    limits: Limits = Limits()
    model_name: str = "llmga"
    #: mount the web app at /ui (needs gradio)
    web: bool = True
    #: extra host names (Host header) and origins (Origin header) to accept besides this server's own
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    #: seconds an image URL stays valid (None: as long as its session)
    image_url_seconds: float | None = None
    #: days a session is kept after its last activity (None: for ever)
    retention_days: float | None = None

    def check(self) -> None:
        """Refuse settings that would be unsafe or cannot work."""
        if not 0 <= self.port <= 65535:
            raise InvalidInputError(f"port must be between 0 and 65535, got {self.port}")
        if not is_loopback(self.host) and not self.token:
            raise InvalidInputError(
                f"binding {self.host} makes the studio reachable from other machines; "
                "give an API token (--token or LLMGA_TOKEN) that clients send as 'Authorization: Bearer TOKEN'"
            )
        if self.workers < 1:
            raise InvalidInputError(f"workers must be at least 1, got {self.workers}")
        if self.max_pending < self.workers:
            raise InvalidInputError(f"max pending jobs ({self.max_pending}) must be at least the workers ({self.workers})")
        for name in ("image_url_seconds", "retention_days"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InvalidInputError(f"{name} must be positive, got {value}")
        if self.broker and not str(self.store or "").startswith(("postgres://", "postgresql://")):
            raise InvalidInputError("a broker sends turns to workers that share the session store: "
                                    "give a PostgreSQL one (--store postgresql://…)")
        if self.broker and not self.broker.startswith(("redis://", "rediss://", "unix://")):
            raise InvalidInputError(f"the broker is a Redis URL (redis://HOST:PORT/DB), got {self.broker!r}")

    def hosts(self) -> tuple[str, ...]:
        """Host names the studio answers to: loopback names, the bound address and the configured ones.

        ``("*",)`` (any) when it listens beyond loopback with a token and no names are configured.
        """
        if not is_loopback(self.host) and not self.allowed_hosts:
            return ("*",)
        bound = () if self.host in ("0.0.0.0", "::") else (self.host,)
        return tuple(dict.fromkeys((*LOOPBACK_NAMES, *bound, *self.allowed_hosts)))


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
