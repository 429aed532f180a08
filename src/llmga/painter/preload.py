"""Which diffusers classes load a painter folder, and importing them in the background while the brain answers.

torch, diffusers and transformers take seconds to import on a small CPU,
longer than the offline default's brain takes to load and answer. A command
starts :func:`import_in_background` beside the brain (before it loads, where
it loads without torch), so the two overlap; a pipeline load calls
:func:`wait_for_background_imports` first. This module imports nothing heavy
until its thread runs, so the calling thread never waits for torch.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

#: diffusers' ``AutoPipelineFor…`` class per task, and the pipeline classes it would pick unchanged: a folder
#: saved as one of these loads with its own class, sparing the import of every pipeline diffusers has (~0.5 s)
AUTO = {"text2image": "AutoPipelineForText2Image", "inpainting": "AutoPipelineForInpainting"}
SAME_TASK = {"text2image": ("StableDiffusionPipeline", "StableDiffusionXLPipeline"),
             "inpainting": ("StableDiffusionInpaintPipeline", "StableDiffusionXLInpaintPipeline")}


def pipeline_class(task: str, path: Path, extra_components: bool = False) -> Any:
    """The diffusers class that loads the checked ``path`` for ``task`` (a key of :data:`AUTO`): the folder's own
    class when the auto class would keep it and no extra components (a ControlNet) change it, else the auto class."""
    import diffusers

    if path.is_dir() and not extra_components:
        name = json.loads((path / "model_index.json").read_text()).get("_class_name")
        if name in SAME_TASK[task]:
            return getattr(diffusers, name)
    return getattr(diffusers, AUTO[task])


def loader_classes(path: Path) -> None:
    """Import what a pipeline's ``from_pretrained(path)`` looks up for each component of the folder: the
    component's class and the base classes diffusers tells loaders apart by (its guiders among them), so that
    the load itself imports nothing more."""
    import importlib

    from diffusers.pipelines.pipeline_loading_utils import ALL_IMPORTABLE_CLASSES

    index = json.loads((path / "model_index.json").read_text()) if path.is_dir() else {}
    for value in index.values():
        if isinstance(value, list) and len(value) == 2 and value[0] in ("diffusers", "transformers"):
            library = importlib.import_module(value[0])
            for name in (value[1], *ALL_IMPORTABLE_CLASSES):
                getattr(library, name, None)


#: the background import threads not yet waited for, by (task, folder); a load waits for them, as Python may
#: hand a module still being imported by one thread to another half-built (its import-deadlock escape)
_STARTED: dict[tuple[str, Path], threading.Thread] = {}


def import_in_background(task: str, path: Path) -> None:
    """Start importing what loading the checked ``path`` for ``task`` will import (seconds), in a thread of its
    own that ends with them; not again while one for the same task and folder runs. Only imports run there:
    loading models in two threads at once is not safe (a model built on one thread can land on the meta device
    another thread's loader set up). Until the load, the calling thread must not import diffusers or
    transformers itself."""
    key = (task, path)
    if key in _STARTED and _STARTED[key].is_alive():
        return

    def run() -> None:
        with contextlib.suppress(Exception):  # the load itself reports what is wrong
            pipeline_class(task, path)
            loader_classes(path)

    _STARTED[key] = thread = threading.Thread(target=run, name="painter-imports", daemon=True)
    thread.start()


def wait_for_background_imports() -> None:
    """Return once every background import thread has ended."""
    for key, thread in list(_STARTED.items()):
        thread.join()
        _STARTED.pop(key, None)
