"""What every painter does the same way: pick device and dtype, load a pipeline, report progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..checkpoints import check_diffusers_dir

ProgressCallback = Any  # Callable[[int, int], None]: (step, total_steps)


def device_and_dtype(device: str | None = None) -> tuple[str, torch.dtype]:
    """The device to paint on (CUDA when present) and its dtype (float16 on CUDA)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return device, torch.float16 if device == "cuda" else torch.float32


def load_pipeline(auto_class: Any, path: str | Path, device: str | None = None, **kwargs: Any) -> Any:
    """Check ``path`` and load it with a diffusers ``AutoPipelineFor…`` class, offline, quiet, on ``device``."""
    from diffusers.utils import logging as diffusers_logging

    path = check_diffusers_dir(path)
    device, dtype = device_and_dtype(device)
    shown = diffusers_logging.is_progress_bar_enabled()
    diffusers_logging.disable_progress_bar()  # loading a few components needs no bar
    try:
        pipe = auto_class.from_pretrained(path, local_files_only=True, dtype=dtype, **kwargs)
    finally:
        if shown:
            diffusers_logging.enable_progress_bar()
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def progress_kwargs(progress: ProgressCallback | None) -> dict[str, Any]:
    """Pipeline arguments that report (step, total) after each denoising step; the pipeline knows the total."""
    if progress is None:
        return {}
    return {"callback_on_step_end": lambda pipe, i, t, kw: (progress(i + 1, pipe.num_timesteps), kw)[1]}
