"""Embedding control (GILL, and the paper's LLMGA-Embedding): the brain paints through ``[IMG]`` tokens.

Instead of writing a generation prompt in words, the brain emits r new tokens
``[IMG1]`` … ``[IMGr]``; a mapper turns their hidden states into the painter's
prompt embeddings (77 × its ``cross_attention_dim``), which the painter paints
from. A retrieval head maps the same states into a CLIP image space, where a
library of pictures (:mod:`llmga.library`) may already hold the answer.

- :mod:`.mappers`: GILL's mapper variants (linear, MLP, encoder, GILLMapper);
- :mod:`.heads`: :class:`ControlConfig`, :class:`ControlHeads` and the model folder;
- :mod:`.tokens`: the ``[IMG]`` tokens in a tokenizer, in training replies and in token ids.

Training is :mod:`llmga.train.gill` (``llmga train gill``).
"""

from .heads import ControlConfig, ControlHeads, is_control_model, read_config
from .mappers import KINDS

__all__ = ["KINDS", "ControlConfig", "ControlHeads", "is_control_model", "read_config"]
