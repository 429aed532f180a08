"""Diffusion painters driven by the assistant's generation prompts, one module per task.

The names below load on first use, so that importing a light module of this
package (:mod:`.preload`, :mod:`.samplers`) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"LongPromptEncoder": "long_prompt", "PromptEmbeddings": "long_prompt", "Painting": "text_to_image",
            "TextToImagePainter": "text_to_image"}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
