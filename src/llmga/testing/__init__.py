"""Public test helpers: tiny random-weight model stacks in the real on-disk formats, and test doubles.

Build a directory, then load it with the ordinary ``from_pretrained`` code::

    from llmga.testing import build_tiny_sd
    path = build_tiny_sd(tmp_path / "sd", variant="sd15")

:mod:`llmga.testing.doubles` holds a brain and a painter whose behaviour is known (imported on demand).
"""

from .tiny import (
    CHAT_TEMPLATE,
    SD_VARIANTS,
    build_tiny_causal_lm,
    build_tiny_clip_tokenizer,
    build_tiny_clip_vision,
    build_tiny_llava,
    build_tiny_sd,
)

__all__ = [
    "CHAT_TEMPLATE",
    "SD_VARIANTS",
    "build_tiny_causal_lm",
    "build_tiny_clip_tokenizer",
    "build_tiny_clip_vision",
    "build_tiny_llava",
    "build_tiny_sd",
]
