"""Success of a painter in the world: the share of its pictures the judge reads as showing their request."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..world.requests import Request, attribute_agreement, shows


def success_rate(pictures: Sequence, requests: Sequence[Request], judge) -> float:
    """Share of ``pictures`` the judge reads as showing their request."""
    if not requests:
        return float("nan")
    readings = judge.read(list(pictures))
    return float(np.mean([shows(r, q) for r, q in zip(readings, requests, strict=True)]))


def painter_success(paint: Callable[[list[str]], list], requests: Sequence[Request], judge,
                    prompts: Sequence[str] | None = None) -> float:
    """Paint each request (from ``prompts`` when given, else its own words) and score the pictures."""
    return success_rate(paint(list(prompts or [q.prompt for q in requests])), requests, judge)


def painter_scores(paint: Callable[[list[str]], list], requests: Sequence[Request], judge) -> dict[str, float]:
    """Paint each one-object request from its own words; the success share and, per attribute, the share of
    pictures whose one object agrees with it (``position``: in the asked cell)."""
    readings = judge.read(paint([q.prompt for q in requests]))
    agreement = [attribute_agreement(r, q.scene) for r, q in zip(readings, requests, strict=True)]
    return {"success": float(np.mean([shows(r, q) for r, q in zip(readings, requests)])),
            **{a: float(np.mean([row[a] for row in agreement])) for a in agreement[0]}}
