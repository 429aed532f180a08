"""The training loop both stages share: accumulate, clip, step, log, checkpoint, resume."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

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
    return accelerator


def _cpu_processes() -> bool:
    """Whether this is one of several CPU processes (``torchrun`` without GPUs): accelerate then trains them
    data-parallel only when told ``cpu=True``; a single process keeps any accelerator it finds (MPS included)."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def _checkpoints(out: Path) -> list[Path]:
    return sorted((out / "checkpoints").glob("step-*"))


def latest_step(out: Path) -> int:
    """The step of the latest checkpoint under ``out/checkpoints`` (0 when there is none)."""
    checkpoints = _checkpoints(Path(out))
    return int(checkpoints[-1].name.split("-")[1]) if checkpoints else 0


def resume(accelerator: Any, out: Path) -> int:
    """Load the latest checkpoint under ``out/checkpoints`` if there is one; return its step.

    Model, optimizer, scheduler and RNG states come back; :func:`train` then skips
    the batches of the epoch the checkpoint was in that were already trained on.
    """
    checkpoints = _checkpoints(out)
    if not checkpoints:
        return 0
    accelerator.load_state(str(checkpoints[-1]))
    step = latest_step(out)
    accelerator.print(f"resumed from {checkpoints[-1]} (step {step})")
    return step


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
    step = resume(accelerator, out)
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
                accelerator.save_state(str(out / "checkpoints" / f"step-{step:07d}"))
                if keep_last and accelerator.is_main_process:
                    for old in _checkpoints(out)[:-keep_last]:
                        shutil.rmtree(old)
            if step >= total:
                break
    progress.close()
    for tracker in accelerator.trackers:  # not end_training(): that also ends the process group, which callers
        tracker.finish()                  # still use (the final save's barrier, an evaluation after training)
