"""Retrieve or generate: a calibrated threshold on the library's best match, with a frequency multiplier.

The retrieval head's query finds the library's nearest picture; its cosine
similarity ``s`` is the evidence. The decision is a logistic calibration of
that score, ``P(retrieve) = sigmoid(slope * s + bias)``, fitted on held-out
requests labelled by whether the picture found answers them
(``llmga eval decision``). A picture is retrieved when its odds, multiplied
by the user's ``frequency`` (1: as calibrated; 2: twice the odds; 0: never),
exceed one. Saved beside the model as ``decision.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

DECISION_FILE = "decision.json"


@dataclass
class Decision:
    """``P(retrieve) = sigmoid(slope * score + bias)``, and how well it did on the held-out cases."""

    slope: float
    bias: float
    accuracy: float | None = None
    calibrated_on: int = 0
    held_out: int = 0
    library: str = ""

    def logit(self, score: float, frequency: float = 1.0) -> float:
        if frequency <= 0:
            return -math.inf
        return self.slope * score + self.bias + math.log(frequency)

    def probability(self, score: float, frequency: float = 1.0) -> float:
        logit = self.logit(score, frequency)
        return 0.0 if logit == -math.inf else 1 / (1 + math.exp(-logit))

    def retrieve(self, score: float, frequency: float = 1.0) -> bool:
        """Whether a best match of ``score`` is retrieved rather than a new picture painted."""
        return self.logit(score, frequency) > 0

    @property
    def threshold(self) -> float:
        """The score above which a picture is retrieved (at frequency 1)."""
        return -self.bias / self.slope if self.slope else (-math.inf if self.bias > 0 else math.inf)

    @classmethod
    def fit(cls, scores: list[float], labels: list[bool], **extra) -> Decision:
        """Logistic calibration of ``scores`` to ``labels`` (True: retrieving was right)."""
        x, y = torch.tensor(scores, dtype=torch.float64), torch.tensor(labels, dtype=torch.float64)
        if y.min() == y.max():  # one kind of case only: always do that
            return cls(0.0, 10.0 if bool(y[0]) else -10.0, calibrated_on=len(scores), **extra)
        mean, std = x.mean(), x.std().clamp_min(1e-6)
        weights = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([weights], max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            logits = weights[0] * (x - mean) / std + weights[1]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + 1e-3 * weights[0] ** 2
            loss.backward()
            return loss

        optimizer.step(closure)
        scale, offset = weights.detach()
        return cls(float(scale / std), float(offset - scale * mean / std), calibrated_on=len(scores), **extra)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / DECISION_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Decision | None:
        """The decision saved in ``folder``, or None if there is none."""
        path = Path(folder) / DECISION_FILE
        return cls(**json.loads(path.read_text())) if path.is_file() else None
