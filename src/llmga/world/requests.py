"""Requests: a scene plus the attributes a user named, and whether a reading of a picture shows them.

A request is a scene plus the attributes the user actually named: "a red
star" names colour and shape only, a detailed caption names everything.
A picture succeeds when the judge reads as many objects as were asked for,
for every requested object one agreeing on each named attribute, and the
named background. (Counting matters: a painter that strews objects about
would otherwise pass "a red star" whenever one of them is a red star.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .captions import detailed_caption, short_caption
from .scene import Scene, sample_scene

OBJECT_ATTRIBUTES = ("shape", "colour", "size", "position")
BACKGROUND_ATTRIBUTES = ("time", "terrain")
SHORT = frozenset({"shape", "colour"})
EVERYTHING = frozenset(OBJECT_ATTRIBUTES + BACKGROUND_ATTRIBUTES)


@dataclass(frozen=True)
class Request:
    """A scene and the attributes of it that were asked for."""

    scene: Scene
    attributes: frozenset[str]

    @property
    def prompt(self) -> str:
        """The words of the request: the short caption, or the detailed one when everything is named."""
        return detailed_caption(self.scene) if self.attributes == EVERYTHING else short_caption(self.scene)


def single_object_requests(n: int, seed: int = 0, attributes: frozenset[str] = SHORT,
                           **choices: tuple[str, ...]) -> list[Request]:
    """``n`` seeded one-object requests naming ``attributes`` (``choices``: :func:`sample_scene`'s restrictions)."""
    rng = random.Random(seed)
    return [Request(sample_scene(rng, 1, **choices), attributes) for _ in range(n)]


def shows(read: Scene, request: Request) -> bool:
    """Whether the read scene shows the requested objects, no others, with every requested attribute."""
    named = request.attributes
    for attribute in BACKGROUND_ATTRIBUTES:
        if attribute in named and getattr(read.background, attribute) != getattr(request.scene.background, attribute):
            return False
    if len(read.objects) != len(request.scene.objects):
        return False
    fields = [a for a in OBJECT_ATTRIBUTES if a in named]
    return all(any(all(getattr(r, a) == getattr(want, a) for a in fields) for r in read.objects)
               for want in request.scene.objects)


#: What :func:`aspects` checks separately: the background, how the objects look, where they stand.
ASPECTS = ("background", "looks", "positions")


def aspects(read: Scene, truth: Scene) -> dict[str, bool]:
    """Whether a reading agrees with the truth on its background, on its objects' looks (colour, shape and
    size, wherever they stand) and on where its objects stand (whatever they look like)."""
    def looks(scene: Scene) -> list[tuple[str, str, str]]:
        return sorted((o.colour, o.shape, o.size) for o in scene.objects)

    def places(scene: Scene) -> list[str]:
        return sorted(o.position for o in scene.objects)

    return {"background": read.background == truth.background, "looks": looks(read) == looks(truth),
            "positions": places(read) == places(truth)}


def value_of(scene: Scene, attribute: str) -> str:
    """A one-object scene's value of ``attribute`` (its background's time or terrain, else its object's)."""
    owner = scene.background if attribute in BACKGROUND_ATTRIBUTES else scene.objects[0]
    return getattr(owner, attribute)


def attribute_agreement(read: Scene, truth: Scene) -> dict[str, bool]:
    """Per attribute, whether a one-object reading agrees with a one-object truth (background included)."""
    out = {a: getattr(read.background, a) == getattr(truth.background, a) for a in BACKGROUND_ATTRIBUTES}
    got = read.objects[0] if len(read.objects) == 1 else None
    for a in OBJECT_ATTRIBUTES:
        out[a] = got is not None and all(getattr(got, a) == getattr(o, a) for o in truth.objects)
    return out
