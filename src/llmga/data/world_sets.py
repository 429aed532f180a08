"""The world assistant's stage-1 data in LLaVA format (``llmga data world-llava``).

Every conversation is one :class:`Item`: a request (with a picture for the
image kinds) and the reply the assistant is taught. The kinds are the paper's
four stage-1 sets, in the miniature world, plus plain visual questions:

- ``refine``: "Draw a red star." → a tagged detailed caption (the text-only
  refinement set of :mod:`llmga.data.world_chat`, plain questions included);
- ``similar``: a picture + "make one like this" → its tagged detailed caption;
- ``inpaint``: a picture with one grid cell greyed out + what to paint there
  (or nothing: the cell becomes empty) → the tagged caption of the whole target;
- ``outpaint``: a picture with grey borders + "extend this picture", naming the
  objects the borders hide → the tagged caption of the whole scene;
- ``edit``: a picture + an edit instruction → the tagged target caption;
- ``question``: a picture + "what colour is the object at the center?" → a
  plain answer ("It is red."), so the model keeps reading pictures.

As in :mod:`llmga.data.world_chat`, some colour–shape pairs are held out of
training (no scene a training item shows or asks for uses one); the
measurement (:mod:`llmga.eval.world_prompts`) asks only for items that do
(:func:`held_out_items`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..masks import apply_mask
from ..world.captions import background_phrase, detailed_caption, object_phrase
from ..world.edits import refer, sample_edit
from ..world.regions import cell_mask, outpaint_mask, touched_positions
from ..world.render import render
from ..world.requests import EVERYTHING, Request
from ..world.scene import POSITIONS, Scene, sample_object, sample_scene
from .builders import tagged_reply
from .records import make_record, save_image, write_records
from .templates import (
    DESCRIBE_IMAGE,
    EDIT_IMAGE,
    GENERATE_SIMILAR,
    INPAINT,
    OUTPAINT,
    OUTPAINT_TOWARD,
    as_sentence,
    join_sides,
    pool,
)
from . import world_chat
from .world_chat import colour_shapes, held_out_pairs
from .world_wording import HELD, TRAIN

KINDS = ("refine", "similar", "inpaint", "outpaint", "edit", "question")
#: how often each kind comes up in a training set
SHARES = {"refine": 0.2, "similar": 0.15, "inpaint": 0.15, "outpaint": 0.1, "edit": 0.2, "question": 0.2}
#: the colour of the region a picture hides
GREY = (128, 128, 128)
#: the kinds of :mod:`.world_chat` a refinement item is, and how often (a held-out one is always a request)
REFINE_KINDS = ("request", "count", "several", "chat", "question", "outside")
REFINE_WEIGHTS = (0.45, 0.1, 0.2, 0.1, 0.1, 0.05)
#: share of inpainting items that name nothing to paint (the grey cell becomes empty)
EMPTY_INPAINT_SHARE = 0.2


PAINT_IN_CELL = pool(
    "world_paint_in_cell", "object",
    "Paint {object} in the grey area.", "Fill the grey square with {object}.",
    "Put {object} where the picture is grey.", "Inpaint the grey part with {object}.",
    "Replace the grey region with {object}.", "Draw {object} in the masked area.",
)
HIDDEN_OBJECTS = pool(
    "world_hidden_objects", "objects",
    "The hidden part shows {objects}.", "Put {objects}.", "It should show {objects}.",
    "Include {objects}.", "Keep {objects} in it.",
)
COLOUR_AT = pool(
    "world_colour_at", "position",
    "What colour is the object at the {position}?", "What color is the shape at the {position}?",
    "Which colour does the thing at the {position} have?", "Tell me the colour of the object at the {position}.",
)
SHAPE_AT = pool(
    "world_shape_at", "position",
    "What shape is at the {position}?", "What is the shape of the object at the {position}?",
    "Which shape can you see at the {position}?", "What kind of shape is at the {position}?",
)
WHERE = pool(
    "world_where", "object",
    "Where is {object}?", "In which part of the picture is {object}?", "Where can you see {object}?",
)
COUNT = pool(
    "world_count", "",
    "How many objects are in this picture?", "How many shapes can you see?", "Count the objects in the picture.",
)
TIME_OF_DAY = pool(
    "world_time", "",
    "What time of day is it in this picture?", "Is it day, sunset or night here?", "When is this picture set?",
)
TERRAIN = pool(
    "world_terrain", "",
    "What is the ground made of?", "What kind of ground is in this picture?", "Is the ground grass, sand, snow or water?",
)
NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class Item:
    """One conversation: the request (and its picture), the reply taught, and what a reply must get right.

    ``wanted`` is what a painted reply's prompt must show (None for a plain
    answer); ``facts`` are the phrases a plain answer must hold; ``scenes``
    are the scenes the item shows or asks for, the pictured one first (for the held-out check).
    """

    kind: str
    request: str
    reply: str
    scenes: tuple[Scene, ...]
    image: Image.Image | None = None
    mask: Image.Image | None = None
    wanted: Request | None = None
    facts: tuple[str, ...] = ()


def _tagged(kind: str, rng: random.Random, request: str, target: Scene, scenes: tuple[Scene, ...],
            image: Image.Image, mask: Image.Image | None = None) -> Item:
    """A pictured item whose reply is a short sentence and ``target``'s detailed caption in tags that name the
    task (the kind)."""
    reply = tagged_reply(rng, kind, detailed_caption(target), named=True)
    return Item(kind, request, reply, scenes, image, mask, wanted=Request(target, EVERYTHING))


def refine_item(rng: random.Random, held: set, max_objects: int, want_held: bool) -> Item:
    """A world request without a picture, asked as people ask (:mod:`.world_chat`), or a plain question."""
    kind = rng.choices(REFINE_KINDS, REFINE_WEIGHTS)[0]
    code = "zh" if rng.random() < world_chat.CHINESE_SHARE else "en"
    chat = world_chat.make_item(kind, code, rng, HELD if want_held else TRAIN, held, want_held)
    return Item("refine", chat.request, chat.reply, chat.scenes, wanted=chat.wanted)


def similar_item(rng: random.Random, max_objects: int) -> Item:
    """A picture and a request for one like it."""
    scene = sample_scene(rng, max_objects)
    return _tagged("similar", rng, GENERATE_SIMILAR.pick(rng), scene, (scene,), render(scene))


def inpaint_item(rng: random.Random, max_objects: int) -> Item:
    """A picture with one cell greyed out and what to paint there (or nothing: the cell is emptied)."""
    scene = sample_scene(rng, max_objects)
    position = rng.choice(POSITIONS)
    kept = [o for o in scene.objects if o.position != position]
    if rng.random() < EMPTY_INPAINT_SHARE:
        target, request = scene.with_objects(kept), INPAINT.pick(rng)
    else:
        new = sample_object(rng, position)
        target = scene.with_objects(kept + [new])
        request = PAINT_IN_CELL.pick(rng, object=f"a {new.size} {new.colour} {new.shape}")
    mask = cell_mask(position).image
    return _tagged("inpaint", rng, request, target, (scene, target), apply_mask(render(scene), mask, GREY), mask)


def outpaint_item(rng: random.Random, max_objects: int) -> Item:
    """A picture with grey borders and a request to extend it, naming the objects the borders hide."""
    scene = sample_scene(rng, max_objects)
    mask = outpaint_mask(width=rng.choice(("narrow", "wide")), rng=rng)
    if rng.random() < 0.5:
        request = OUTPAINT.pick(rng)
    else:
        request = OUTPAINT_TOWARD.pick(rng, sides=join_sides(list(mask.sides)))
    touched = touched_positions(mask.image)
    hidden = [object_phrase(o) for o in scene.objects if o.position in touched]
    if hidden:
        request += " " + HIDDEN_OBJECTS.pick(rng, objects=" and ".join(hidden))
    picture = apply_mask(render(scene), mask.image, GREY)
    return _tagged("outpaint", rng, request, scene, (scene,), picture, mask.image)


def edit_item(rng: random.Random, max_objects: int) -> Item:
    """A picture and an edit instruction; the reply is the edited scene's caption."""
    pair = sample_edit(sample_scene(rng, max_objects), rng, max_objects=max_objects + 1)
    request = EDIT_IMAGE.pick(rng, instruction=as_sentence(pair.instruction))
    return _tagged("edit", rng, request, pair.target, (pair.source, pair.target), render(pair.source))


def _ask_colour(scene: Scene, rng: random.Random) -> tuple[str, str, tuple[str, ...]]:
    obj = rng.choice(scene.objects)
    return COLOUR_AT.pick(rng, position=obj.position), f"It is {obj.colour}.", (obj.colour,)


def _ask_shape(scene: Scene, rng: random.Random) -> tuple[str, str, tuple[str, ...]]:
    obj = rng.choice(scene.objects)
    return SHAPE_AT.pick(rng, position=obj.position), f"It is a {obj.shape}.", (obj.shape,)


def _ask_where(scene: Scene, rng: random.Random) -> tuple[str, str, tuple[str, ...]]:
    obj = rng.choice(scene.objects)
    return WHERE.pick(rng, object=refer(scene, obj)), f"It is at the {obj.position}.", (obj.position,)


def _ask_count(scene: Scene, rng: random.Random) -> tuple[str, str, tuple[str, ...]]:
    count = len(scene.objects)
    answer = f"There {'is' if count == 1 else 'are'} {NUMBERS[count]} object{'' if count == 1 else 's'}."
    return COUNT.pick(rng), answer, (NUMBERS[count],)


def _ask_time(scene: Scene, rng: random.Random) -> tuple[str, str, tuple[str, ...]]:
    time = scene.background.time
    return TIME_OF_DAY.pick(rng), f"It is {time}.", (time,)


def _ask_terrain(scene: Scene, rng: random.Random) -> tuple[str, str, tuple[str, ...]]:
    terrain = scene.background.terrain
    return TERRAIN.pick(rng), f"The ground is {terrain}.", (terrain,)


def _ask_description(scene: Scene, rng: random.Random) -> tuple[str, str, tuple[str, ...]]:
    facts = tuple(object_phrase(o) for o in scene.objects) + (background_phrase(scene.background),)
    return DESCRIBE_IMAGE.pick(rng), as_sentence(detailed_caption(scene)), facts


QUESTIONS: tuple[Callable[[Scene, random.Random], tuple[str, str, tuple[str, ...]]], ...] = (
    _ask_colour, _ask_shape, _ask_where, _ask_count, _ask_time, _ask_terrain, _ask_description,
)


def question_item(rng: random.Random, max_objects: int) -> Item:
    """A picture and a plain question about it, answered without tags."""
    scene = sample_scene(rng, max_objects)
    question, answer, facts = rng.choice(QUESTIONS)(scene, rng)
    return Item("question", question, answer, (scene,), image=render(scene), facts=facts)


_MAKERS: dict[str, Callable[[random.Random, int], Item]] = {
    "similar": similar_item, "inpaint": inpaint_item, "outpaint": outpaint_item,
    "edit": edit_item, "question": question_item,
}


def make_item(kind: str, rng: random.Random, held: set, max_objects: int = 2, want_held: bool = False) -> Item:
    """An item of ``kind`` whose scenes use a held-out colour–shape pair exactly when ``want_held``."""
    if kind == "refine":
        return refine_item(rng, held, max_objects, want_held)
    while True:
        item = _MAKERS[kind](rng, max_objects)
        if bool(colour_shapes(*item.scenes) & held) == want_held:
            return item


def build_world_sets(out_json: str | Path, n: int = 4000, seed: int = 0, max_objects: int = 2,
                     shares: dict[str, float] | None = None) -> Path:
    """Write ``n`` LLaVA-format conversations of every kind to ``out_json``; pictures go to ``images/`` beside it.

    Deterministic by ``seed``, which also fixes the held-out colour–shape pairs
    (:func:`~llmga.data.world_chat.held_out_pairs`); no item uses one.
    """
    out_json = Path(out_json)
    root, held = out_json.parent, held_out_pairs(seed)
    shares = shares or SHARES
    kinds, weights = list(shares), list(shares.values())
    records = []
    for index in range(n):
        rng = random.Random(f"{seed}/world-llava/{index}")
        item = make_item(rng.choices(kinds, weights)[0], rng, held, max_objects)
        records.append(_record(item, f"{out_json.stem}-{index:06d}", root))
    return write_records(records, out_json)


def _record(item: Item, name: str, root: Path) -> dict:
    """The item as a record; its picture (with the scene it was rendered from as PNG text) and mask are saved."""
    files = {}
    if item.image is not None:
        files["image"] = save_image(item.image, root, name, {"kind": item.kind, "scene": item.scenes[0].to_dict()})
    if item.mask is not None:
        files["mask"] = save_image(item.mask, root, f"{name}-mask")
    return make_record(name, [(item.request, item.reply)], kind=item.kind, **files)


def held_out_items(n: int = 20, seed: int = 0, max_objects: int = 2, kinds: Sequence[str] = KINDS) -> list[Item]:
    """``n`` held-out items of each kind (seeded apart from the training items)."""
    held = held_out_pairs(seed)
    return [make_item(kind, random.Random(f"{seed}/world-llava-bench/{kind}/{i}"), held, max_objects,
                      want_held=kind != "question")
            for kind in kinds for i in range(n)]
