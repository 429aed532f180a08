"""Teaching the assistant the world, and measuring it with the oracle painter.

The world's prompt-refinement set: a short request ("draw a red star") gets a
reply with the scene's detailed caption in generation tags (size, position and
background imagined, colour and shape kept); plain questions get plain answers.
Some colour–shape pairs are held out of training entirely, so the measurement
asks for pictures the assistant never saw asked for.

The measurement renders each prompt exactly (:func:`~llmga.world.captions.oracle_paint`)
and lets the judge read it, so it measures the brain alone, apart from any
painter's skill: well-formed (exactly one prompt that parses as a world
caption; none for a question) and faithful (the picture shows every requested
object with its colour and shape).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path

from ..data.records import make_record, write_records
from ..data.refine_demo import QA_CAPITALS, SHORT_REQUESTS, make_question
from ..data.templates import REPLIES
from ..protocol import parse_reply, tag_prompt
from .captions import detailed_caption, oracle_paint, parse_detailed_or_none, short_caption
from .scene import COLOURS, SHAPES, Scene, sample_scene

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


@dataclass
class AssistantScores:
    """Shares in [0, 1] over the measured items."""

    items: int
    requests: int
    well_formed: float
    faithful_oracle: float

    def as_dict(self) -> dict:
        return asdict(self)


def measure_assistant(brain, n: int = 100, seed: int = 0, max_objects: int = 1, max_new_tokens: int = 64,
                      judge=None) -> AssistantScores:
    """Ask for held-out pictures (and plain questions); render each prompt exactly; let the judge read it."""
    from ..eval.refine import replies
    from .judge import Judge

    judge = judge or Judge.load()
    rng, held = random.Random(seed + 7919), held_out_pairs(seed)
    items: list[tuple[str, Scene | None]] = []
    for _ in range(n):
        if rng.random() < 0.2:
            items.append((make_question(rng, sorted(QA_CAPITALS))[0], None))
        else:
            items.append(refine_request(rng, held, max_objects, want_held=True))
    answers = replies(brain, [q for q, _ in items], max_new_tokens)
    well = faithful = 0
    for (_, asked), answer in zip(items, answers):
        reply = parse_reply(answer, brain.end_markers)
        if asked is None:
            well += int(not reply.prompts and bool(reply.text))
            continue
        if len(reply.prompts) != 1 or parse_detailed_or_none(reply.prompts[0]) is None:
            continue
        well += 1
        seen = judge.read([oracle_paint(reply.prompts[0])])[0]
        wanted = sorted((o.colour, o.shape) for o in asked.objects)
        got = sorted((o.colour, o.shape) for o in seen.objects)
        faithful += int(all(pair in got for pair in wanted))
    n_requests = sum(1 for _, s in items if s is not None)
    return AssistantScores(len(items), n_requests, well / max(1, len(items)), faithful / max(1, n_requests))
