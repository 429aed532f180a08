"""How well a judge reads pictures: accuracy per attribute on held-out renders (``llmga eval judge``)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch

from ..world.judge import Judge, augment, scene_targets, to_tensor
from ..world.render import render_batch
from ..world.scene import Scene, sample_scenes

#: Accuracy every attribute must reach before other figures are trusted.
TARGET = 0.95
ATTRIBUTES = ("time", "terrain", "occupied", "colour", "shape", "size")


def _accuracy(judge: Judge, scenes: list[Scene], x: torch.Tensor) -> dict[str, float]:
    """Per-attribute accuracy of the judge on pictures ``x`` of ``scenes``."""
    return reading_accuracy(judge.logits(x), scene_targets(scenes, judge.config), judge.config.sizes)


def reading_accuracy(out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                     sizes: Sequence[str]) -> dict[str, float]:
    """Per-attribute accuracy of judge-shaped logits ``out`` against :func:`scene_targets`.

    The figures are those of :func:`evaluate_judge`.
    """
    right: dict[str, torch.Tensor] = {
        "time": out["time"].argmax(-1) == targets["time"],
        "terrain": out["terrain"].argmax(-1) == targets["terrain"],
        "occupied": (out["occupied"] > 0) == (targets["occupied"] > 0),
    }
    has = targets["occupied"] > 0
    for name in ("colour", "shape", "size"):
        right[name] = (out[name].argmax(-1) == targets[name])[has]
    whole = right["occupied"].clone()
    for name in ("colour", "shape", "size"):
        cell_right = torch.ones_like(whole)
        cell_right[has] = right[name]
        whole &= cell_right
    size_idx = targets["size"][has]
    report = {name: right[name].float().mean().item() for name in ATTRIBUTES}
    for i, size_name in enumerate(sizes):
        report[f"shape_{size_name}"] = right["shape"][size_idx == i].float().mean().item()
    report["object"] = (whole[has]).float().mean().item()
    report["scene"] = (whole.all(dim=1) & right["time"] & right["terrain"]).float().mean().item()
    return {k: round(v, 4) for k, v in report.items()}


def evaluate_judge(
    judge: Judge, n: int = 2000, seed: int = 1, max_objects: int = 3, size: int | None = None
) -> dict[str, Any]:
    """Accuracy per attribute on ``n`` held-out renders (0..``max_objects`` objects), clean and augmented.

    Renders are ``size`` pixels (default: the first training size, 32); held out
    means drawn from a seed stream training never uses.

    ``time``/``terrain``: share of pictures; ``occupied``: share of cells whose
    emptiness is read right; ``colour``/``shape``/``size``: share of objects
    (``shape_small``/``shape_large`` split shape by size); ``object``: objects
    read right in every attribute; ``scene``: pictures read right in full.
    ``passed`` says whether every attribute reached :data:`TARGET` on clean renders.
    """
    size = size or judge.config.render_sizes[0]
    scenes = sample_scenes(random.Random(f"judge-eval-{seed}"), n, max_objects)
    x = to_tensor(render_batch(scenes, size))
    clean = _accuracy(judge, scenes, x)
    degraded = _accuracy(judge, scenes, augment(x, torch.Generator().manual_seed(seed)))
    return {
        "n": n,
        "max_objects": max_objects,
        "size": size,
        "clean": clean,
        "augmented": degraded,
        "target": TARGET,
        "passed": all(clean[a] >= TARGET for a in ATTRIBUTES),
    }


def format_report(report: dict[str, Any]) -> str:
    """The judge's accuracies as a table: one row per attribute, clean and augmented columns."""
    clean, noisy = report["clean"], report["augmented"]
    rows = [f"{'attribute':<12} {'clean':>7} {'augmented':>9}"]
    rows += [f"{name:<12} {clean[name]:>7.2%} {noisy[name]:>9.2%}" for name in clean]
    verdict = "passed" if report["passed"] else "NOT passed"
    rows.append(
        f"{report['n']} held-out {report['size']}px renders, 0-{report['max_objects']} objects; "
        f"target {report['target']:.0%} per attribute: {verdict}"
    )
    if "training" in report:
        t = report["training"]
        rows.append(
            f"trained {t['steps']} steps x {t['batch_size']} scenes in {t['seconds']:.0f} s"
            f" on {t['threads']} thread(s)"
        )
    return "\n".join(rows)
