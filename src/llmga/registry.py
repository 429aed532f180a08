"""The registry of models that ship with llmga, and the default profile.

This is the one module that names shipped models. Core modules look them up
here by name (a painter ``world``, a brain adapter ``smollm2-world``, the
``world-judge``) and never import the packages that trained them; a brain
adapter whose base is built on demand names its builder by a string in
:data:`BUILT_BASES`, resolved only when such an adapter loads.

Each shipped model is a folder under ``llmga/assets/`` with a model card
(``README.md``) naming the command that reproduces it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"

PAINTER, ADAPTER, JUDGE, CLIP, RESTORER, CONTROL = "painter", "adapter", "judge", "clip", "restorer", "control"


@dataclass(frozen=True)
class Shipped:
    """A model shipped in ``assets/``: its name (what users type), kind and folder."""

    name: str
    kind: str
    folder: str

    @property
    def path(self) -> Path:
        return ASSETS / self.folder


SHIPPED = {
    model.name: model
    for model in (
        Shipped("world", PAINTER, "world-painter"),
        Shipped("world-stage2", PAINTER, "world-painter-stage2"),
        Shipped("world-inpaint", PAINTER, "world-painter-inpaint"),
        Shipped("smollm2-refine", ADAPTER, "smollm2-refine"),
        Shipped("smollm2-world", ADAPTER, "smollm2-world"),
        Shipped("gemma3-world", ADAPTER, "gemma3-world"),
        Shipped("world-llava", ADAPTER, "world-llava"),
        Shipped("world-judge", JUDGE, "world-judge"),
        Shipped("world-clip", CLIP, "world-clip"),
        Shipped("world-restore", RESTORER, "world-restore"),
    )
}

#: bases built on demand, by the name an adapter's ``llmga_base.json`` gives: "module:function", where
#: ``function(info, adapter_dir)`` gets that file's content and returns the built model's directory
BUILT_BASES = {"world-llava": "llmga.train.world_llava:world_llava_base"}

#: how a painter reads prompts, where it reads a form of its own, by the name its folder's
#: ``llmga_painter.json`` gives as ``{"prompts": NAME}``: "module:function", where ``function(prompt)``
#: returns the prompt as the painter was trained to read it (the world painters know the nine cells, not an
#: object placed by its relation to another), resolved only when such a painter loads
PROMPT_READERS = {"world": "llmga.world.captions:absolute_prompt"}

#: the form of the prompts a brain trained under a shipped system prompt writes: (the system prompt, the form:
#: :func:`llmga.brain.forms.fits` reads it), as "module:name" strings, resolved only for a brain with a system prompt
PROMPT_FORMS = {"world": ("llmga.world.assistants:SYSTEM_PROMPT", "llmga.world.captions:CAPTION_FORM")}

#: the profile used when there is no config file: the miniature world, offline (fields of
#: :class:`llmga.profiles.Profile`)
DEFAULT_PROFILE = {
    "name": "built-in (miniature world)",
    "brain": "gemma3-world",
    "painter": "world-stage2",
    "inpaint_painter": "world-inpaint",
    "restorer": "world-restore",
    "paint": {"steps": 20, "guidance": 4.0},
}


def shipped(name: str, kind: str) -> Path | None:
    """The folder of the shipped model ``name`` of ``kind``, or None if there is none."""
    model = SHIPPED.get(name)
    return model.path if model is not None and model.kind == kind else None


def names(kind: str) -> tuple[str, ...]:
    """The names of the shipped models of ``kind``."""
    return tuple(m.name for m in SHIPPED.values() if m.kind == kind)


def prompt_form(system_prompt: str | None):
    """The form of the prompts a brain asked under ``system_prompt`` writes (:data:`PROMPT_FORMS`; the world
    assistants' prompts are world captions), or None: any text."""
    if system_prompt is None:
        return None
    return next((resolve(form) for prompt, form in PROMPT_FORMS.values()
                 if system_prompt.strip() == resolve(prompt).strip()), None)


def resolve(spec: str):
    """The object a "module:name" string of this registry names, imported now."""
    module, function = spec.split(":")
    return getattr(importlib.import_module(module), function)
