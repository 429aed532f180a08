"""Training the world judge from scratch on freshly rendered scenes (``llmga train judge``)."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..eval.judge_accuracy import evaluate_judge
from ..world.judge import Judge, JudgeConfig, augment, scene_targets, to_tensor
from ..world.render import render_batch
from ..world.scene import sample_scenes


def judge_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of the heads' losses (object attributes only where there is an object)."""
    loss = F.binary_cross_entropy_with_logits(outputs["occupied"], targets["occupied"])
    for name in ("colour", "shape", "size"):
        loss = loss + F.cross_entropy(outputs[name].flatten(0, 1), targets[name].flatten(), ignore_index=-100)
    return (
        loss
        + F.cross_entropy(outputs["time"], targets["time"])
        + F.cross_entropy(outputs["terrain"], targets["terrain"])
    )



def train_judge(
    out_dir: str | Path | None = None,
    steps: int = 3000,
    *,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    config: JudgeConfig | None = None,
    augment_p: float = 0.8,
    threads: int | None = 1,
    eval_scenes: int = 2000,
    progress: bool = True,
) -> tuple[Judge, dict[str, Any]]:
    """Train a judge from scratch on freshly rendered scenes; save it in ``out_dir`` (if given).

    Returns the judge and its report: :func:`evaluate_judge` on held-out renders,
    clean and augmented, the training time, and the mean loss every 50 steps
    (every tenth of a short run). ``augment_p`` of each batch is degraded by
    :func:`augment`.
    """
    from tqdm.auto import tqdm

    if threads:
        torch.set_num_threads(threads)
    config = config or JudgeConfig()
    judge = Judge.new(config, seed)
    net = judge.net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
    )
    rng = random.Random(f"judge-train-{seed}")
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    losses: list[float] = []
    curve: list[tuple[int, float]] = []
    every = max(1, min(50, steps // 10))
    bar = tqdm(range(steps), desc="training judge", disable=not progress)
    for step in bar:
        scenes = sample_scenes(rng, batch_size, config.max_objects)
        x = to_tensor(render_batch(scenes, rng.choice(config.render_sizes)))
        degrade = torch.rand(batch_size, generator=gen) < augment_p
        if degrade.any():
            x[degrade] = augment(x[degrade], gen)
        loss = judge_loss(net(judge.prepare(x)), scene_targets(scenes, config))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if (step + 1) % every == 0 or step + 1 == steps:
            curve.append((step + 1, round(sum(losses) / len(losses), 4)))
            bar.set_postfix(loss=f"{curve[-1][1]:.3f}")
            losses.clear()
    seconds = time.perf_counter() - start
    judge.net.eval()
    config.training = {
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "augment_p": augment_p,
        "threads": torch.get_num_threads(),
        "seconds": round(seconds, 1),
    }
    report = {
        "training": config.training,
        "loss_curve": curve,
        **evaluate_judge(judge, n=eval_scenes, seed=seed + 1),
    }
    if out_dir is not None:
        judge.save(out_dir)
        (Path(out_dir) / "report.json").write_text(json.dumps(report, indent=2))
    return judge, report
