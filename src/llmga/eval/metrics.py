"""The paper's metrics, each through a pluggable backbone (:mod:`llmga.eval.backbones`).

- Set metrics, between a set of painted pictures and a set of reference ones:
  :func:`fid`, :func:`kid` and the :func:`inception_score` of the painted set
  (torchmetrics computes them from the backbone's features or logits, taken
  once per picture so that :func:`bootstrap` can resample them cheaply; the
  runners' FID is :func:`frechet`, the same number computed in the samples' span).
- Pair metrics, each painted picture against its own target: :func:`lpips`,
  :func:`clip_i`, :func:`dino` (cosine similarity of image embeddings),
  :func:`l1` and :func:`l2` (mean absolute and squared difference of pixels in
  [0, 1], the painted picture resized to the target's size, as MagicBrush does).
- :func:`clip_t`: each picture against a text (cosine similarity of CLIP embeddings).

Pair metrics return one value per pair; :func:`mean_interval` gives their mean
with a 95% interval, :func:`bootstrap` a set metric's interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import InvalidInputError
from .backbones import Backbones


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95% interval (``low``, ``high``) and the number of samples behind it."""

    value: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}

    def overlaps(self, other: Estimate) -> bool:
        """Whether the two intervals overlap (a difference smaller than its interval is no difference)."""
        return self.low <= other.high and other.low <= self.high


class _Given(torch.nn.Module):
    """A torchmetrics feature extractor that returns its input: the features were computed beforehand."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def features(images: Sequence[Image.Image], backbones: Backbones) -> torch.Tensor:
    """The FID/KID features of ``images`` (compute once, reuse for every figure and resample)."""
    backbones.need("features")
    return backbones.features.features(images).double()


def logits(images: Sequence[Image.Image], backbones: Backbones) -> torch.Tensor:
    """The Inception Score classifier's logits for ``images``."""
    backbones.need("classifier")
    return backbones.classifier.logits(images).double()


def fid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between two feature sets (torchmetrics' FID)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    _need_samples(real, fake, least=2)
    metric = FrechetInceptionDistance(feature=_Given(real.shape[1]), sync_on_compute=False)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def frechet(real: torch.Tensor, fake: torch.Tensor) -> float:
    """The same Fréchet distance as :func:`fid_from_features`, computed in the samples' span.

    With n samples of d features the covariances have rank below n, so the trace of
    (S1 S2)^(1/2) is the sum of the singular values of (B A^T) / sqrt((n1-1)(n2-1)) for the
    centred feature matrices A, B: an n x n problem instead of a d x d one. It makes
    bootstrap resamples of a 2048-feature FID cheap; :func:`fid_from_features` (torchmetrics) gives the value.
    """
    a, b = real.double() - real.double().mean(0), fake.double() - fake.double().mean(0)
    n1, n2 = len(a) - 1, len(b) - 1
    mean_term = (real.double().mean(0) - fake.double().mean(0)).pow(2).sum()
    cross = torch.linalg.svdvals(b @ a.T).sum() / math.sqrt(n1 * n2)
    return float(mean_term + a.pow(2).sum() / n1 + b.pow(2).sum() / n2 - 2 * cross)


def fid_interval(real: torch.Tensor, fake: torch.Tensor, rounds: int = 200, seed: int = 0) -> Estimate:
    """FID with a bootstrap interval, both by :func:`frechet` (equal to torchmetrics' FID, which takes
    seconds per call at 2048 features on a CPU where :func:`frechet` takes milliseconds)."""
    return bootstrap(frechet, real, fake, rounds=rounds, seed=seed)


def kid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Kernel Inception Distance (the mean over subsets, torchmetrics' KID)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    _need_samples(real, fake, least=2)
    subset = min(len(real), len(fake), 100)
    metric = KernelInceptionDistance(feature=_Given(real.shape[1]), subset_size=subset, subsets=20,
                                     sync_on_compute=False)  # only the main process computes figures
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # torchmetrics draws the subsets from torch's global generator
        return float(metric.compute()[0])


def is_from_logits(class_logits: torch.Tensor) -> float:
    """Inception Score of a set from its classifier logits (one split, torchmetrics' IS)."""
    from torchmetrics.image.inception import InceptionScore

    metric = InceptionScore(feature=_Given(class_logits.shape[1]), splits=1, sync_on_compute=False)
    metric.update(class_logits)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # torchmetrics shuffles the features with torch's global generator
        return float(metric.compute()[0])


def fid(real: Sequence[Image.Image], fake: Sequence[Image.Image], backbones: Backbones) -> float:
    return fid_from_features(features(real, backbones), features(fake, backbones))


def kid(real: Sequence[Image.Image], fake: Sequence[Image.Image], backbones: Backbones) -> float:
    return kid_from_features(features(real, backbones), features(fake, backbones))


def inception_score(images: Sequence[Image.Image], backbones: Backbones) -> float:
    return is_from_logits(logits(images, backbones))


def lpips(painted: Sequence[Image.Image], targets: Sequence[Image.Image], backbones: Backbones) -> list[float]:
    backbones.need("lpips")
    _pairs(painted, targets)
    return backbones.lpips.distance(list(painted), list(targets)).tolist()


def clip_i(painted: Sequence[Image.Image], targets: Sequence[Image.Image], backbones: Backbones) -> list[float]:
    backbones.need("clip")
    _pairs(painted, targets)
    a, b = backbones.clip.image_features(painted), backbones.clip.image_features(targets)
    return (a * b).sum(-1).tolist()


def clip_t(images: Sequence[Image.Image], texts: Sequence[str], backbones: Backbones) -> list[float]:
    backbones.need("clip")
    _pairs(images, texts)
    a, b = backbones.clip.image_features(images), backbones.clip.text_features(texts)
    return (a * b).sum(-1).tolist()


def dino(painted: Sequence[Image.Image], targets: Sequence[Image.Image], backbones: Backbones) -> list[float]:
    backbones.need("dino")
    _pairs(painted, targets)
    a, b = (torch.nn.functional.normalize(backbones.dino.features(s).float(), dim=-1) for s in (painted, targets))
    return (a * b).sum(-1).tolist()


def l1(painted: Sequence[Image.Image], targets: Sequence[Image.Image]) -> list[float]:
    return [float(np.abs(p - t).mean()) for p, t in _unit_pixels(painted, targets)]


def l2(painted: Sequence[Image.Image], targets: Sequence[Image.Image]) -> list[float]:
    return [float(((p - t) ** 2).mean()) for p, t in _unit_pixels(painted, targets)]


def mean_interval(values: Sequence[float]) -> Estimate:
    """The mean of per-pair values with a 95% t-interval."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        raise InvalidInputError("no values to average")
    if len(x) == 1:
        return Estimate(float(x[0]), float("-inf"), float("inf"), 1)
    half = t_quantile(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return Estimate(float(x.mean()), float(x.mean() - half), float(x.mean() + half), len(x))


def t_quantile(p: float, df: int) -> float:
    """The ``p``-quantile (p >= 0.5) of Student's t with ``df`` degrees of freedom: its tail
    P(T > t) = I_{df/(df+t^2)}(df/2, 1/2) / 2 (mpmath's regularized incomplete beta), solved by bisection."""
    import mpmath

    def tail(t: float) -> float:
        return float(mpmath.betainc(df / 2, 0.5, 0, df / (df + t * t), regularized=True)) / 2

    low, high = 0.0, 1e4
    for _ in range(80):
        mid = (low + high) / 2
        low, high = (mid, high) if tail(mid) > 1 - p else (low, mid)
    return (low + high) / 2


def share_interval(flags: Sequence[bool]) -> Estimate:
    """A share with its 95% Wilson interval."""
    n = len(flags)
    if n == 0:
        raise InvalidInputError("no outcomes to count")
    p, z = sum(bool(f) for f in flags) / n, 1.959964
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


def bootstrap(statistic: Callable[..., float], *samples: torch.Tensor, rounds: int = 200, seed: int = 0) -> Estimate:
    """``statistic(*samples)`` with a 95% bootstrap interval (each sample set resampled apart).

    The percentile interval is shifted by the bootstrap's bias: a resample repeats pictures, and set metrics
    such as FID grow as the number of distinct pictures falls, so uncorrected percentiles sit above the value.
    """
    value = statistic(*samples)
    generator = torch.Generator().manual_seed(seed)
    draws = []
    for _ in range(rounds):
        resampled = [s[torch.randint(len(s), (len(s),), generator=generator)] for s in samples]
        draws.append(statistic(*resampled))
    bias = float(np.mean(draws)) - value
    low, high = np.percentile(draws, [2.5, 97.5]) - bias
    return Estimate(value, float(low), float(high), min(len(s) for s in samples))


def _pairs(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise InvalidInputError(f"pair metrics need as many pictures as targets, got {len(a)} and {len(b)}")


def _need_samples(real: torch.Tensor, fake: torch.Tensor, least: int) -> None:
    if min(len(real), len(fake)) < least:
        raise InvalidInputError(f"a set metric needs at least {least} pictures per set, got {len(real)} and {len(fake)}")


def _unit_pixels(painted: Sequence[Image.Image], targets: Sequence[Image.Image]):
    _pairs(painted, targets)
    for p, t in zip(painted, targets):
        t = t.convert("RGB")
        p = p.convert("RGB").resize(t.size, Image.BICUBIC) if p.size != t.size else p.convert("RGB")
        yield np.asarray(p, dtype=np.float64) / 255, np.asarray(t, dtype=np.float64) / 255
