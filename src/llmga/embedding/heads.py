"""What embedding control adds to a brain, and how it is saved.

An embedding-control model is a folder::

    control.json         ControlConfig: the base brain, r, the reply style, the mapper, the painter it serves
    heads.safetensors    the mapper (+ SDXL's pooled head) and the retrieval head
    adapter/             peft adapter: the [IMG] token embeddings (+ the LM's LoRA when it was trained)
    decision.json        the calibrated retrieve-or-generate decision (optional; :mod:`.decision`)

:class:`ControlHeads` turns the ``[IMG]`` hidden states into the painter's
prompt embeddings and, when trained for it, into a retrieval query in a CLIP
image space.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from ..errors import InvalidInputError, ModelNotFoundError
from .mappers import PooledHead, build_mapper

CONFIG_FILE, HEADS_FILE, ADAPTER_DIR = "control.json", "heads.safetensors", "adapter"
#: reply styles: LLMGA-Embedding keeps the reply and puts the [IMG] tokens inside the generation tags;
#: GILL-style answers with the [IMG] tokens alone (its LM is frozen and never learns the tags)
STYLES = ("tagged", "bare")


@dataclass
class ControlConfig:
    """How an embedding-control model was built (``control.json``)."""

    base: str
    hidden: int
    width: int
    painter: str = ""
    pooled: int | None = None
    tokens: int = 8
    style: str = "tagged"
    lora: bool = True
    mapper: str = "gillmapper"
    mapper_inner: int = 512
    mapper_layers: int = 4
    mapper_heads: int = 4
    retrieval_dim: int | None = None
    retrieval_clip: str | None = None
    #: log-odds added to ``[IMG1]`` (GILL's frequency multiplier, calibrated: ``llmga train gill-calibrate``)
    image_bias: float = 0.0

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise InvalidInputError(f"unknown reply style {self.style!r}; choose from {', '.join(STYLES)}")
        if self.tokens < 1:
            raise InvalidInputError(f"embedding control needs at least one [IMG] token, got {self.tokens}")

    @property
    def names(self) -> list[str]:
        """The new tokens: ``[IMG1]`` … ``[IMGr]``."""
        return [f"[IMG{i}]" for i in range(1, self.tokens + 1)]

    @property
    def group(self) -> str:
        """The text of one image: the r tokens in order."""
        return "".join(self.names)


class ControlHeads(nn.Module):
    """The mapper (and pooled head) to the painter's prompt embeddings, and the retrieval head."""

    def __init__(self, config: ControlConfig) -> None:
        super().__init__()
        self.config = config
        self.mapper = build_mapper(config.mapper, config.hidden, config.width, config.tokens,
                                   config.mapper_inner, config.mapper_layers, config.mapper_heads)
        self.pooled = PooledHead(config.width, config.pooled) if config.pooled else None
        self.retrieval = nn.Linear(config.hidden, config.retrieval_dim) if config.retrieval_dim else None
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def embeddings(self, states: torch.Tensor, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(b, 77, width)`` prompt embeddings, and ``(b, pooled)`` for SDXL (else None)."""
        sequence = self.mapper(states, inputs)
        return sequence, self.pooled(sequence) if self.pooled is not None else None

    def query(self, states: torch.Tensor) -> torch.Tensor:
        """Unit vectors in the retrieval CLIP's image space, ``(b, retrieval_dim)``."""
        if self.retrieval is None:
            raise InvalidInputError("this embedding-control model has no retrieval head (trained without "
                                    "--retrieval-clip)")
        query = self.retrieval(states.mean(dim=1))
        return query / query.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def save(self, folder: Path, half: bool = False) -> None:
        """Write ``heads.safetensors`` (float16 with ``half``: half the size; it loads back as float32)."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: (v.half() if half else v).detach().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, folder / HEADS_FILE)
        (folder / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> ControlHeads:
        from safetensors.torch import load_file

        folder = Path(folder)
        config = read_config(folder)
        heads = cls(config)
        heads.load_state_dict(load_file(folder / HEADS_FILE))
        return heads.eval()


def read_config(folder: str | Path) -> ControlConfig:
    """The ``control.json`` of an embedding-control model folder, checked."""
    folder = Path(folder)
    missing = [name for name in (CONFIG_FILE, HEADS_FILE, f"{ADAPTER_DIR}/adapter_config.json")
               if not (folder / name).is_file()]
    if missing:
        raise ModelNotFoundError(f"{folder} is not an embedding-control model ({', '.join(missing)} missing); "
                                 "make one with llmga train gill")
    values = json.loads((folder / CONFIG_FILE).read_text())
    known = {f.name for f in fields(ControlConfig)}
    return ControlConfig(**{k: v for k, v in values.items() if k in known})


def is_control_model(folder: str | Path) -> bool:
    """Whether ``folder`` looks like an embedding-control model."""
    return (Path(folder) / CONFIG_FILE).is_file()
