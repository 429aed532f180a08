"""Mappers from the brain's ``[IMG]`` hidden states to a painter's prompt embeddings (GILL's ablation).

Every mapper takes the last-layer hidden states of the r ``[IMG]`` tokens,
``(batch, r, hidden)``, and their input embeddings (same shape), and returns
``(batch, 77, width)``: a sequence in the painter text encoder's output space,
``width`` being the painter's ``cross_attention_dim``. The variants are the
rows of GILL's mapper ablation:

- ``linear``: each state linearly to its share of the 77 positions (GILL's linear map);
- ``mlp``: the same with a three-layer MLP;
- ``encoder``: a Transformer encoder over the states and 77 learned queries, read at the queries;
- ``gillmapper``: GILL's mapper, a Transformer encoder–decoder: the encoder reads the states
  (plus their input embeddings), the decoder turns 77 learned queries into the sequence.

An SDXL painter also wants a pooled text embedding: :class:`PooledHead` reads it off the sequence.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from ..errors import InvalidInputError

#: the positions of a CLIP text encoder's output (one 75-token window with its begin and end tokens)
SEQUENCE = 77
KINDS = ("linear", "mlp", "encoder", "gillmapper")


class ChunkMapper(nn.Module):
    """Each of the r states maps to ``ceil(77 / r)`` positions; the sequence is cut to 77 (``linear``, ``mlp``)."""

    def __init__(self, hidden: int, width: int, tokens: int, layers: int = 1, inner: int = 512) -> None:
        super().__init__()
        self.per_token = math.ceil(SEQUENCE / tokens)
        self.width = width
        out = self.per_token * width
        if layers == 1:
            self.net = nn.Linear(hidden, out)
        else:
            self.net = nn.Sequential(nn.Linear(hidden, inner), nn.GELU(), nn.Linear(inner, inner), nn.GELU(),
                                     nn.Linear(inner, out))

    def forward(self, states: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        out = self.net(states)  # (b, r, per_token * width)
        return out.reshape(states.shape[0], -1, self.width)[:, :SEQUENCE]


class QueryMapper(nn.Module):
    """77 learned queries read the states through a Transformer (``encoder`` or ``gillmapper``)."""

    def __init__(self, hidden: int, width: int, inner: int = 512, layers: int = 4, heads: int = 4,
                 decoder: bool = True) -> None:
        super().__init__()
        self.decoder = decoder
        self.fc = nn.Linear(hidden, inner)
        self.queries = nn.Parameter(torch.randn(1, SEQUENCE, inner) * 0.02)
        warnings.filterwarnings("ignore", message="enable_nested_tensor is True")  # norm_first layers: no nesting
        if decoder:
            self.transformer = nn.Transformer(d_model=inner, nhead=heads, num_encoder_layers=layers,
                                              num_decoder_layers=layers, dim_feedforward=4 * inner, dropout=0.0,
                                              batch_first=True, norm_first=True)
        else:
            layer = nn.TransformerEncoderLayer(inner, heads, 4 * inner, dropout=0.0, batch_first=True,
                                               norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(inner, width)

    def forward(self, states: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        queries = self.queries.expand(states.shape[0], -1, -1)
        if self.decoder:
            read = self.transformer(self.fc(states + inputs), queries)
        else:
            read = self.transformer(torch.cat([self.fc(states), queries], dim=1))[:, -SEQUENCE:]
        return self.out(read)


class PooledHead(nn.Module):
    """SDXL's pooled text embedding, read off the mapped sequence."""

    def __init__(self, width: int, pooled: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, pooled))

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        return self.net(sequence.mean(dim=1))


def build_mapper(kind: str, hidden: int, width: int, tokens: int, inner: int = 512, layers: int = 4,
                 heads: int = 4) -> nn.Module:
    """The mapper ``kind`` (one of :data:`KINDS`) from ``hidden``-wide states of ``tokens`` tokens to ``width``."""
    if kind == "linear":
        return ChunkMapper(hidden, width, tokens)
    if kind == "mlp":
        return ChunkMapper(hidden, width, tokens, layers=3, inner=inner)
    if kind in ("encoder", "gillmapper"):
        if inner % heads:
            raise InvalidInputError(f"the mapper's width {inner} must be a multiple of its {heads} heads")
        return QueryMapper(hidden, width, inner, layers, heads, decoder=kind == "gillmapper")
    raise InvalidInputError(f"unknown mapper {kind!r}; choose from {', '.join(KINDS)}")
