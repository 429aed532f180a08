"""Named profiles: which brain and painter to use, and their settings.

Profiles live in a TOML file: ``--config PATH``, else ``$LLMGA_CONFIG``, else
``~/.config/llmga/config.toml`` (``$XDG_CONFIG_HOME`` respected)::

    [profiles.sd15]
    brain = "/models/llmga-7b-llava"     # a directory, a .gguf file, "smollm2" or a server URL
    painter = "/models/stable-diffusion-v1-5"
    inpaint_painter = "/models/stable-diffusion-inpainting"   # optional
    edit_painter = "/models/sd15-edit"                        # optional: edits on another checkpoint
    controlnet = ["/models/sd-controlnet-canny"]              # optional; one or several
    restorer = "/models/diffrir-x1"                           # optional: repairs in/outpainting seams
    max_prompt_tokens = 300
    # control = "embedding"               # paint through [IMG] embeddings (GILL) instead of language prompts
    # control_model = "/runs/gill/final"  # the embedding-control model (llmga train gill)
    # library = "/photos"                 # retrieve from this picture folder (llmga index build) or paint
    # image_frequency = 1.0               # odds multiplier: the brain answers with an image
    # retrieval_frequency = 1.0           # odds multiplier: a library picture is retrieved rather than painted

    [profiles.sd15.sampling]            # llmga.brain.SamplingSettings fields
    temperature = 0.2

    [profiles.sd15.paint]               # llmga.settings.PaintSettings fields
    steps = 50
    guidance = 7.5
    sampler = "dpm++_2m"                # and karras, timestep_spacing
    loras = ["/models/style.safetensors:0.8"]
    # preset = "lightning"              # few-step settings first; the table's other keys still win

    [profiles.sd15.runtime]             # llmga.settings.RuntimeSettings fields
    painter_device = "cuda"
    brain_quantize = "4bit"
    offload = "model"

With no file and no ``--profile``, the built-in default (:data:`BUILT_IN`,
from :data:`llmga.registry.DEFAULT_PROFILE`) is used: the models shipped with
llmga, offline.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import registry
from .errors import LLMGAError
from .settings import DEFAULT_MAX_PROMPT_TOKENS, PaintSettings, RuntimeSettings, SamplingSettings


@dataclass
class Profile:
    """A named choice of models and settings."""

    name: str = "default"
    brain: str = "smollm2-refine"
    brain_model: str | None = None
    api_key_env: str | None = None
    painter: str | None = None
    inpaint_painter: str | None = None
    edit_painter: str | None = None
    controlnet: str | list[str] | None = None
    restorer: str | None = None
    max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS
    out_dir: str = "outputs"
    control: str = "language"
    control_model: str | None = None
    library: str | None = None
    image_frequency: float = 1.0
    retrieval_frequency: float = 1.0
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    paint: PaintSettings = field(default_factory=PaintSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)

    @property
    def api_key(self) -> str | None:
        """The API key for an OpenAI-compatible brain, read from ``api_key_env``."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None


def _default() -> Profile:
    fields = dict(registry.DEFAULT_PROFILE)
    return Profile(**{**fields, "paint": PaintSettings(**fields.get("paint", {})),
                      "sampling": SamplingSettings(**fields.get("sampling", {}))})


#: The profile used when there is no config file (see :mod:`llmga.registry`).
BUILT_IN = _default()


def config_path(explicit: str | Path | None = None) -> Path:
    """The config file to read (it may not exist)."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("LLMGA_CONFIG"):
        return Path(os.environ["LLMGA_CONFIG"]).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")).expanduser()
    return base / "llmga" / "config.toml"


def load_profile(name: str | None = None, path: str | Path | None = None) -> Profile:
    """Read profile ``name`` (default: "default", or the built-in default if the file has none)."""
    file = config_path(path)
    if path and not file.is_file():
        raise LLMGAError(f"config file {file} does not exist")
    profiles: dict[str, Any] = {}
    if file.is_file():
        try:
            profiles = tomllib.loads(file.read_text()).get("profiles", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise LLMGAError(f"cannot read config file {file}: {exc}") from exc
    if name is None:
        name = "default"
        if name not in profiles:
            return dataclasses.replace(BUILT_IN)
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise LLMGAError(f"no profile '{name}' in {file} (profiles there: {known})")
    return _build(name, profiles[name], file)


def _build(name: str, table: dict[str, Any], file: Path) -> Profile:
    table = dict(table)
    nested = {"sampling": SamplingSettings, "paint": _paint, "runtime": RuntimeSettings}
    kwargs: dict[str, Any] = {"name": name}
    known = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    for key, value in table.items():
        if key not in known:
            raise LLMGAError(f"profile '{name}' in {file}: unknown key '{key}' (known: {', '.join(sorted(known))})")
        if key in nested:
            try:
                kwargs[key] = nested[key](**value)
            except (TypeError, ValueError, LLMGAError) as exc:
                raise LLMGAError(f"profile '{name}' in {file}: bad [{key}] table: {exc}") from exc
        else:
            kwargs[key] = value
    return Profile(**kwargs)


def _paint(preset: str | None = None, **values: Any) -> PaintSettings:
    """A profile's [paint] table: its few-step ``preset`` first, then its other keys."""
    base = PaintSettings().with_preset(preset) if preset else PaintSettings()
    return dataclasses.replace(base, **values)
