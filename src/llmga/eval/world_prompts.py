"""The LLaVA-format world assistant alone: its prompts rendered exactly by the oracle painter, read back by the judge.

This measures the brain apart from any painter's skill (``llmga eval llava``;
asked as people ask, text only: :mod:`llmga.eval.world_assistant`). Requests ask
only for held-out colour–shape pairs (:func:`llmga.data.world_chat.held_out_pairs`,
never seen in training).

- :func:`measure_llava`: per kind of the world's stage-1 sets (refine,
  similar, inpaint, outpaint, edit, question), well-formed and faithful
  replies (the picture shows the target scene; a plain answer holds the
  expected words) and, for replies describing a whole scene, the share right
  on each of :data:`~llmga.world.requests.ASPECTS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from ..data.world_sets import KINDS, Item, held_out_items
from ..protocol import parse_reply
from ..world.captions import absolute_prompt, oracle_paint, parse_detailed_or_none
from ..world.requests import ASPECTS, EVERYTHING, aspects, shows
from .replies import answers, share, well_formed


def is_world_caption(prompt: str) -> bool:
    """Whether ``prompt`` parses as a detailed world caption."""
    return parse_detailed_or_none(prompt) is not None


@dataclass
class KindScores:
    """Shares in [0, 1] over one kind's items; ``aspects`` (kinds whose reply describes a whole scene):
    the share of replies right on each of :data:`~llmga.world.requests.ASPECTS` (ill-formed ones count as wrong)."""

    items: int
    well_formed: float
    faithful: float
    aspects: dict[str, float] = field(default_factory=dict)


@dataclass
class Verdict:
    """One reply, judged: well-formed, faithful, and (for a whole-scene reply) right per aspect."""

    well_formed: bool
    faithful: bool
    aspects: dict[str, bool] | None = None


def measure_llava(brain, n: int = 20, seed: int = 0, max_objects: int = 2, max_new_tokens: int = 96,
                  kinds: Sequence[str] | None = None, judge=None) -> dict[str, KindScores]:
    """Per kind, the share of well-formed and of faithful replies to ``n`` held-out items.

    ``kinds`` defaults to every kind a multimodal brain takes ("refine" alone for a text-only one).
    """
    from ..world.judge import Judge

    judge = judge or Judge.load()
    kinds = kinds or (KINDS if brain.multimodal else ("refine",))
    items = held_out_items(n, seed, max_objects, kinds)
    replies = answers(brain, [item.request for item in items], [item.image for item in items], max_new_tokens)
    verdicts = judge_replies(replies, items, brain.end_markers, judge)
    return {kind: kind_scores([v for item, v in zip(items, verdicts) if item.kind == kind]) for kind in kinds}


def kind_scores(verdicts: Sequence[Verdict]) -> KindScores:
    """The shares of one kind's verdicts: well-formed, faithful, and right per aspect over whole-scene replies."""
    whole = [v.aspects for v in verdicts if v.aspects is not None]
    return KindScores(len(verdicts), share(v.well_formed for v in verdicts), share(v.faithful for v in verdicts),
                      {a: share(w[a] for w in whole) for a in ASPECTS} if whole else {})


def judge_replies(replies: Sequence[str], items: Sequence[Item], end_markers: Sequence[str], judge) -> list[Verdict]:
    """A verdict for each reply; the prompts are painted by the oracle and read by ``judge``."""
    parsed = [parse_reply(reply, end_markers) for reply in replies]
    prompts = [world_prompt(reply.prompts) if item.wanted else None for item, reply in zip(items, parsed)]
    painted = [p for p in prompts if p is not None]
    readings = iter(judge.read([oracle_paint(p) for p in painted]) if painted else [])
    verdicts = []
    for item, reply, prompt in zip(items, parsed, prompts):
        whole = item.wanted is not None and item.wanted.attributes == EVERYTHING
        if item.wanted is None:
            well = well_formed(reply, wants_prompt=False)
            text = reply.text.lower()
            verdicts.append(Verdict(well, well and all(fact.lower() in text for fact in item.facts)))
        elif prompt is None:
            verdicts.append(Verdict(False, False, dict.fromkeys(ASPECTS, False) if whole else None))
        else:
            read = next(readings)
            verdicts.append(Verdict(True, shows(read, item.wanted), aspects(read, item.wanted.scene) if whole else None))
    return verdicts


def world_prompt(prompts: Sequence[str]) -> str | None:
    """The reply's one prompt if it parses as a world caption (objects placed by a relation given their cell),
    else None."""
    return absolute_prompt(prompts[0]) if len(prompts) == 1 and is_world_caption(prompts[0]) else None


def scores_as_dict(scores: dict[str, KindScores]) -> dict[str, dict]:
    """JSON-ready figures by kind."""
    return {kind: asdict(s) for kind, s in scores.items()}
