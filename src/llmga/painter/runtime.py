"""What every painter does the same way: pick device and dtype, load a pipeline, set up a call, report progress.

A painter's source is a diffusers folder or a single-file checkpoint
(:mod:`.single_file`). :class:`~llmga.settings.RuntimeSettings` say where it
runs: the device, model CPU offload, VAE tiling and a replacement VAE.
:func:`prepared` sets a pipeline up for one call: the request's sampler
(:mod:`.samplers`) and LoRAs (:mod:`.loras`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ..checkpoints import check_diffusers_dir
from ..errors import InvalidInputError
from ..settings import PaintSettings, RuntimeSettings
from .loras import activate_loras
from .preload import pipeline_class, wait_for_background_imports
from .samplers import scheduler_for

ProgressCallback = Any  # Callable[[int, int], None]: (step, total_steps)

def device_and_dtype(device: str | None = None, dtype: str | None = None) -> tuple[str, torch.dtype]:
    """The device to paint on (CUDA when present) and its dtype (``dtype`` if given, else float16 on CUDA)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is not None:
        return device, getattr(torch, dtype)
    return device, torch.float16 if device.startswith("cuda") else torch.float32


def load_pipeline(
    task: str, path: str | Path, device: str | None = None, runtime: RuntimeSettings | None = None,
    **kwargs: Any,
) -> Any:
    """Check ``path`` (a diffusers folder or a single file) and load it for ``task`` (``text2image`` or
    ``inpainting``; see :func:`pipeline_class`), offline and quiet, placed as ``runtime`` says (``device``
    overrides its painter device)."""
    wait_for_background_imports()
    from diffusers.utils import logging as diffusers_logging

    from .single_file import is_single_file, load_single_file, load_vae

    runtime = runtime or RuntimeSettings()
    path = check_diffusers_dir(path)
    device, dtype = device_and_dtype(device or runtime.painter_device, runtime.dtype)
    if runtime.vae:
        kwargs["vae"] = load_vae(runtime.vae, dtype)
    loader = pipeline_class(task, path, extra_components=bool(kwargs.keys() - {"vae"}))
    shown = diffusers_logging.is_progress_bar_enabled()
    diffusers_logging.disable_progress_bar()  # loading a few components needs no bar
    try:
        if path.is_file() and is_single_file(path):
            pipe = loader.from_pipe(load_single_file(path, dtype, runtime.model_config), **kwargs)
        else:
            pipe = loader.from_pretrained(path, local_files_only=True, dtype=dtype, **kwargs)
    finally:
        if shown:
            diffusers_logging.enable_progress_bar()
    pipe.set_progress_bar_config(disable=True)
    return place(pipe, device, runtime)


def place(pipe: Any, device: str, runtime: RuntimeSettings) -> Any:
    """Put ``pipe`` on ``device``, or offload it to the CPU between uses; tile the VAE if asked."""
    if runtime.vae_tiling:
        pipe.vae.enable_tiling()
    if runtime.offload == "none":
        return pipe.to(device)
    if not device.startswith("cuda"):
        raise InvalidInputError(f"--offload {runtime.offload} keeps the painter on the CPU until a GPU needs it, "
                                f"but the painter runs on {device}; it needs a CUDA device")
    if runtime.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)
    return pipe


@contextmanager
def prepared(pipeline: Any, settings: PaintSettings) -> Iterator[Any]:
    """``pipeline`` set up for one call with ``settings``: its sampler and LoRAs (the scheduler is put back after).

    Prompt encoding belongs inside the block: LoRAs change the text encoders too.
    """
    original = pipeline.scheduler
    pipeline.scheduler = scheduler_for(settings, original)
    try:
        activate_loras(pipeline, settings.loras)
        yield pipeline
    finally:
        pipeline.scheduler = original


def progress_kwargs(progress: ProgressCallback | None) -> dict[str, Any]:
    """Pipeline arguments that report (step, total) after each denoising step; the pipeline knows the total."""
    if progress is None:
        return {}
    return {"callback_on_step_end": lambda pipe, i, t, kw: (progress(i + 1, pipe.num_timesteps), kw)[1]}
