"""Deciding which painting task a turn asks for.

The decision comes from what the user gave (an image, a mask, a control map,
an outpainting size) and, where that leaves a choice, from what they said. It
is shown to the user with its reason and can always be overridden (``task=``
in the API, ``/task`` in the chat, the one-shot commands).

Rules, in order:

1. an explicit task wins (it must have the inputs it needs);
2. a control map → ControlNet; an image with a mask → inpainting (a mask
   alone applies to the last image); an image with an outpainting request
   (sizes or an aspect) → outpainting;
3. an image with words asking for something similar → similar image;
   an image with an editing instruction → instruction editing; an image with
   anything else → a question about the image (the assistant answers; no painting);
4. no image, but the conversation has a last image and the words are an
   editing instruction ("make it night") → editing of that last image;
5. otherwise → text-to-image (the assistant decides whether to paint at all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from .errors import InvalidInputError


class Task(str, Enum):
    """The painting tasks a turn can ask for."""

    GENERATE = "generate"
    INPAINT = "inpaint"
    OUTPAINT = "outpaint"
    EDIT = "edit"
    SIMILAR = "similar"
    CONTROLNET = "controlnet"
    EXPAND = "expand"
    ANSWER = "answer"


# What each task needs besides the user's words.
_NEEDS = {
    Task.INPAINT: ("image", "mask"),
    Task.OUTPAINT: ("image",),
    Task.EDIT: ("image",),
    Task.SIMILAR: ("image",),
    Task.CONTROLNET: ("control",),
    Task.ANSWER: ("image",),
}

_SIMILAR = re.compile(
    r"\b(similar|like this|like that|like it|same style|in the style of this|another one|variation|"
    r"something like|looks like this)\b",
    re.IGNORECASE,
)
_EDIT = re.compile(
    r"^\s*(please\s+)?(make|change|replace|turn|add|remove|delete|put|"
    r"convert|transform|swap|give|let|set|edit|recolou?r|paint (it|the)|without|erase|move|shift|shrink|enlarge|"
    r"resize|scale)\b|\b(instead of|into a|into an|to be)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class TurnInputs:
    """What the user supplied with a turn, besides text."""

    image: bool = False
    mask: bool = False
    control: bool = False
    outpaint: bool = False
    last_image: bool = False


@dataclass(frozen=True)
class Route:
    """The chosen task, whether it works on the conversation's last image, and why."""

    task: Task
    reason: str
    uses_last_image: bool = False


def route(text: str, inputs: TurnInputs, task: Task | str | None = None) -> Route:
    """Choose the task for a turn (see the module docstring for the rules)."""
    if task is not None:
        try:
            task = Task(task)
        except ValueError:
            known = ", ".join(t.value for t in Task)
            raise InvalidInputError(f"unknown task '{task}'; choose one of: {known}") from None
        return _explicit(task, inputs)
    if inputs.control:
        return Route(Task.CONTROLNET, "a control map was given")
    if inputs.image and inputs.mask:
        return Route(Task.INPAINT, "an image and a mask were given")
    if inputs.mask and inputs.last_image:
        return Route(Task.INPAINT, "a mask was given for the last image", uses_last_image=True)
    if inputs.mask:
        raise InvalidInputError("a mask needs an image to go with it")
    if inputs.image and inputs.outpaint:
        return Route(Task.OUTPAINT, "an image and an outpainting size were given")
    if inputs.image:
        if _SIMILAR.search(text):
            return Route(Task.SIMILAR, "an image was given with a request for something similar")
        if _EDIT.search(text):
            return Route(Task.EDIT, "an image was given with an editing instruction")
        return Route(Task.ANSWER, "an image was given with a question or remark")
    if inputs.last_image and inputs.outpaint:
        return Route(Task.OUTPAINT, "an outpainting size was given for the last image", uses_last_image=True)
    if inputs.last_image and _EDIT.search(text):
        return Route(Task.EDIT, "an editing instruction follows the last image", uses_last_image=True)
    return Route(Task.GENERATE, "a text request")


def settle(text: str, inputs: TurnInputs, chosen: Route, stated: str | None) -> tuple[Route, str | None]:
    """The task a turn runs once the reply is in: the one the reply states (``<gen_img task="edit">``) where
    the turn has what it needs, else ``chosen`` (the rules'); with a notice when a stated task could not run."""
    if stated is None or stated == chosen.task.value:
        return chosen, None
    try:
        explicit = route(text, inputs, stated)
    except InvalidInputError as exc:
        return chosen, f"the assistant chose the task '{stated}', but {exc}; {chosen.task.value} instead"
    return Route(explicit.task, "the assistant chose it", uses_last_image=explicit.uses_last_image), None


def _explicit(task: Task, inputs: TurnInputs) -> Route:
    needs = _NEEDS.get(task, ())
    uses_last = False
    missing = []
    for need in needs:
        if need == "image" and not inputs.image and inputs.last_image:
            uses_last = True
        elif not getattr(inputs, need):
            missing.append(need)
    if missing:
        raise InvalidInputError(f"the task '{task.value}' needs {' and '.join(missing)}, which this turn lacks")
    return Route(task, "chosen by the user", uses_last_image=uses_last)
