"""GILL's mapper variants: every one maps r hidden states to 77 positions of the painter's width."""

import pytest
import torch

from llmga.embedding.heads import ControlConfig, ControlHeads
from llmga.embedding.mappers import KINDS, SEQUENCE, build_mapper
from llmga.errors import InvalidInputError


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tokens", [1, 8])
def test_every_mapper_writes_77_positions_of_the_painters_width(kind, tokens):
    mapper = build_mapper(kind, hidden=24, width=40, tokens=tokens, inner=16, layers=1, heads=2)
    states = torch.randn(3, tokens, 24)
    out = mapper(states, torch.randn_like(states))
    assert out.shape == (3, SEQUENCE, 40)
    out.sum().backward()
    assert all(p.grad is not None for p in mapper.parameters())


def test_gillmapper_reads_the_token_embeddings_too_and_the_encoder_does_not():
    states, embedded = torch.randn(2, 8, 24), torch.randn(2, 8, 24)
    for kind, reads in (("gillmapper", True), ("encoder", False)):
        torch.manual_seed(0)
        mapper = build_mapper(kind, 24, 40, 8, inner=16, layers=1, heads=2)
        changed = not torch.allclose(mapper(states, embedded), mapper(states, embedded * 0))
        assert changed is reads, kind


def test_sdxl_heads_add_a_pooled_embedding_and_a_retrieval_query():
    heads = ControlHeads(ControlConfig(base="b", hidden=24, width=80, pooled=48, mapper="mlp", mapper_inner=16,
                                       retrieval_dim=12))
    states = torch.randn(2, 8, 24)
    sequence, pooled = heads.embeddings(states, states)
    assert sequence.shape == (2, 77, 80) and pooled.shape == (2, 48)
    assert torch.allclose(heads.query(states).norm(dim=-1), torch.ones(2))


def test_an_unknown_mapper_or_style_is_refused_by_name():
    with pytest.raises(InvalidInputError, match="unknown mapper 'resnet'.*gillmapper"):
        build_mapper("resnet", 8, 8, 8)
    with pytest.raises(InvalidInputError, match="unknown reply style"):
        ControlConfig(base="b", hidden=8, width=8, style="loud")
    with pytest.raises(InvalidInputError, match="no retrieval head"):
        ControlHeads(ControlConfig(base="b", hidden=8, width=8, mapper="linear")).query(torch.randn(1, 8, 8))
