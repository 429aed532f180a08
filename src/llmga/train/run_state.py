"""What a training run saves and resumes from: a checkpoint's contents, its writing, the one to resume.

A checkpoint holds what training changes: the weights the optimizer steps (a
LoRA run's adapter, not its frozen base), buffers, optimizer, scheduler and RNG
states. Frozen weights come back from the model the resuming command builds, as
they did the first time. A checkpoint is written under a hidden name and renamed
when complete, so a run stopped while saving (killed, out of disk) resumes from
the last whole one.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any


def checkpoints(out: Path) -> list[Path]:
    """The complete checkpoints under ``out/checkpoints``, oldest first."""
    return sorted((Path(out) / "checkpoints").glob("step-*"))


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name.split("-")[1])


def latest_step(out: Path) -> int:
    """The step of the latest checkpoint under ``out/checkpoints`` (0 when there is none)."""
    found = checkpoints(Path(out))
    return _step(found[-1]) if found else 0


def keep_changing_weights(accelerator: Any) -> None:
    """Make ``accelerator``'s checkpoints leave out frozen weights, and check on loading that one fits its model."""
    accelerator.register_save_state_pre_hook(_drop_frozen)
    accelerator.register_load_state_pre_hook(_check_fits)


def _drop_frozen(models: list, weights: list[dict], _folder: str) -> None:
    for model, state in zip(models, weights):
        for name, param in model.named_parameters(remove_duplicate=False):
            if not param.requires_grad:
                state.pop(name, None)


def _check_fits(models: list, folder: str) -> None:
    from safetensors import safe_open

    for i, model in enumerate(models):
        path = Path(folder) / (f"model_{i}.safetensors" if i else "model.safetensors")
        if not path.is_file():
            continue
        with safe_open(str(path), "pt") as file:
            saved = set(file.keys())
        trained = defaultdict(set)  # a tied weight is saved under one of its names
        for name, param in model.named_parameters(remove_duplicate=False):
            if param.requires_grad:
                trained[id(param)].add(name)
        missing = sorted(min(names) for names in trained.values() if not names & saved)
        unknown = sorted(saved - set(model.state_dict()))
        if missing or unknown:
            detail = f"{len(missing)} trained weights missing (e.g. {missing[0]})" if missing else \
                f"{len(unknown)} weights this model lacks (e.g. {unknown[0]})"
            raise ValueError(f"checkpoint {folder} does not fit this run's model: {detail}")


def save(accelerator: Any, out: Path, step: int, keep_last: int | None = None) -> Path:
    """Write the checkpoint of ``step`` (whole or not at all) and drop all but the last ``keep_last``."""
    folder = Path(out) / "checkpoints" / f"step-{step:07d}"
    partial = folder.with_name(f".{folder.name}.partial")
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        partial.rename(folder)
        if keep_last:
            for old in checkpoints(out)[:-keep_last]:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return folder


def resume(accelerator: Any, out: Path) -> int:
    """Load the latest checkpoint under ``out/checkpoints`` if there is one; return its step.

    Model, optimizer, scheduler and RNG states come back; the loop then skips the
    batches of the epoch the checkpoint was in that were already trained on.
    """
    found = checkpoints(out)
    if not found:
        return 0
    from accelerate.utils import DistributedType

    # frozen weights are not in it (_check_fits checks the rest); DeepSpeed and Megatron load their own checkpoints
    own = accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.MEGATRON_LM)
    accelerator.load_state(str(found[-1]), **({} if own else {"strict": False}))
    step = _step(found[-1])
    accelerator.print(f"resumed from {found[-1]} (step {step})")
    return step
