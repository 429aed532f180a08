"""The world's prompt-refinement set (``llmga data world-refine``).

A short request ("draw a red star") gets a reply with the scene's detailed
caption in generation tags (size, position and background imagined, colour and
shape kept); plain questions get plain answers. Some colour–shape pairs are
held out of training entirely (:func:`held_out_pairs`), so the measurement
(:mod:`llmga.eval.world_prompts`) asks for pictures the assistant never saw asked for.
"""

from __future__ import annotations

import random
from pathlib import Path

from ..protocol import tag_prompt
from ..world.captions import detailed_caption, short_caption
from ..world.scene import COLOURS, SHAPES, Scene, sample_scene
from .records import make_record, write_records
from .refine_demo import QA_CAPITALS, SHORT_REQUESTS, make_question
from .templates import REPLIES

HELD_OUT_SHARE = 0.2


def held_out_pairs(seed: int = 0) -> set[tuple[str, str]]:
    """Colour–shape pairs never requested in training."""
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    random.Random(seed).shuffle(pairs)
    return set(pairs[: round(len(pairs) * HELD_OUT_SHARE)])


def colour_shapes(*scenes: Scene) -> set[tuple[str, str]]:
    """The colour–shape pairs the scenes' objects show."""
    return {(o.colour, o.shape) for scene in scenes for o in scene.objects}


def pick_scene(rng: random.Random, max_objects: int, held: set, want_held: bool) -> Scene:
    """A random scene that shows a held-out pair exactly when ``want_held``."""
    while True:
        scene = sample_scene(rng, max_objects=max_objects)
        if bool(colour_shapes(scene) & held) == want_held:
            return scene


def refine_request(rng: random.Random, held: set, max_objects: int = 1, want_held: bool = False) -> tuple[str, Scene]:
    """A short world request ("Draw a red star.") and the scene it stands for."""
    scene = pick_scene(rng, max_objects, held, want_held)
    return rng.choice(SHORT_REQUESTS).format(x=short_caption(scene)), scene


def refine_reply(rng: random.Random, scene: Scene) -> str:
    """The answer to a request: a short sentence and the scene's detailed caption in generation tags."""
    return f"{REPLIES['generate'].pick(rng)} {tag_prompt(detailed_caption(scene))}"


def build_refine_set(out: str | Path, n: int = 2000, seed: int = 0, max_objects: int = 1,
                     qa_share: float = 0.2) -> Path:
    """Write ``n`` LLaVA-format conversations: world requests (training pairs only) and plain questions."""
    rng, held = random.Random(seed), held_out_pairs(seed)
    countries = sorted(QA_CAPITALS)
    records = []
    for i in range(n):
        if rng.random() < qa_share:
            question, answer = make_question(rng, countries)
        else:
            question, scene = refine_request(rng, held, max_objects)
            answer = refine_reply(rng, scene)
        records.append(make_record(f"world-refine-{i}", [(question, answer)]))
    return write_records(records, out)
