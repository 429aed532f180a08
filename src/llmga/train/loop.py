"""The training loop both stages share: accumulate, clip, step, log, checkpoint, resume."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from . import run_state

LossFn = Callable[[Any, dict], torch.Tensor]


def start(out: Path, grad_accum: int, mixed_precision: str, seed: int, threads: int | None) -> Any:
    """An ``accelerate.Accelerator`` logging to TensorBoard under ``out/logs``, seeded, with ``threads`` CPU threads."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    if threads:
        torch.set_num_threads(threads)
    accelerator = Accelerator(gradient_accumulation_steps=grad_accum, mixed_precision=mixed_precision,
                              cpu=_cpu_processes(),
                              # a batch without images leaves a LLaVA projector unused
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
                              log_with="tensorboard", project_dir=str(out / "logs"))
    set_seed(seed)
    run_state.keep_changing_weights(accelerator)
    return accelerator


def _cpu_processes() -> bool:
    """Whether this is one of several CPU processes (``torchrun`` without GPUs): accelerate then trains them
    data-parallel only when told ``cpu=True``; a single process keeps any accelerator it finds (MPS included)."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def train(
    accelerator: Any,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    loader: Any,
    loss_fn: LossFn,
    *,
    total: int,
    out: Path,
    save_every: int,
    desc: str,
    after_step: Callable[[], None] | None = None,
    keep_last: int | None = None,
) -> None:
    """Run optimizer steps until ``total``, resuming from ``out``'s latest checkpoint.

    ``loss_fn(model, batch)`` returns the loss of one micro-batch;
    ``after_step`` runs after each optimizer step (e.g. an EMA update);
    ``keep_last`` checkpoints are kept (all when None). Gradients are clipped over
    every parameter the optimizer steps, ``model``'s or not. A resumed run goes on
    where its data left off (a ``loader`` with a length and the same order each
    epoch start: the batches already used in this epoch are skipped).
    """
    from tqdm.auto import tqdm

    params = [p for group in optimizer.param_groups for p in group["params"]]
    step = run_state.resume(accelerator, out)
    progress = tqdm(total=total, initial=step, desc=desc, disable=not accelerator.is_local_main_process)
    model.train()
    used = step * accelerator.gradient_accumulation_steps % len(loader) if step and hasattr(loader, "__len__") else 0
    while step < total:
        batches = accelerator.skip_first_batches(loader, used) if used else loader
        used = 0
        for batch in batches:
            with accelerator.accumulate(model):
                loss = loss_fn(model, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            step += 1
            if after_step is not None:
                after_step()
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}")
            accelerator.log({"loss": loss.item(), "lr": scheduler.get_last_lr()[0]}, step=step)
            if step % save_every == 0 or step == total:
                run_state.save(accelerator, out, step, keep_last)
            if step >= total:
                break
    progress.close()
    for tracker in accelerator.trackers:  # not end_training(): that also ends the process group, which callers
        tracker.finish()                  # still use (the final save's barrier, an evaluation after training)
