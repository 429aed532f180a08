"""Embedding-control models trained for a few steps on the tiny stacks (enough to wire, not to paint well)."""

import pytest

from .support import train, write_records


@pytest.fixture(scope="session")
def control_data(tmp_path_factory):
    return write_records(tmp_path_factory.mktemp("gill-data") / "train.json")


@pytest.fixture(scope="session")
def control_model(tiny, control_data, tmp_path_factory):
    """LLMGA-Embedding style (LoRA, tagged replies) for the tiny SD 1.5, with a retrieval head into world-clip."""
    return train(tiny, control_data, tmp_path_factory.mktemp("gill") / "run", retrieval_clip="world-clip",
                 retrieval_target="world")


@pytest.fixture(scope="session")
def bare_model(tiny, control_data, tmp_path_factory):
    """GILL-style (frozen LM, bare replies) for the tiny SDXL: two encoders and a pooled embedding."""
    return train(tiny, control_data, tmp_path_factory.mktemp("gill-xl") / "run", painter="sdxl", lora=False,
                 style="bare", mapper="linear")
