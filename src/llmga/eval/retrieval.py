"""Retrieve or generate, measured in the world (``llmga eval decision``).

Cases are world requests the embedding-control brain answers with an image:
half name a picture of the library exactly (its detailed caption, one-object
pictures only, the kind of request the world assistant learnt), half are
fresh (a short colour–shape request, or the detailed caption of a scene not
drawn from the library). For each case the brain's retrieval query finds the
library's nearest picture; retrieving is *right* when the judge reads that
picture as showing everything the request names, otherwise a new painting was
the right call. The decision (:class:`~llmga.embedding.decision.Decision`) is
fitted on one half of the cases and its accuracy reported on the other half,
beside the two constant policies (always paint, always retrieve).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..assistant import REFINE_REQUEST
from ..brain.base import BrainRequest, complete
from ..conversation import Conversation
from ..embedding.decision import Decision
from ..protocol import OPEN_TAG
from ..settings import SamplingSettings
from ..world.captions import detailed_caption, short_caption
from ..world.requests import EVERYTHING, SHORT, Request, shows
from ..world.scene import sample_scene


@dataclass
class Case:
    """A request, whether it names a library picture, the library's best match and whether that answers it."""

    request: Request
    own: bool
    score: float = 0.0
    found: str = ""
    right: bool = False


def world_cases(scenes: list, n: int, seed: int = 0) -> list[Case]:
    """``n`` cases: half the detailed captions of the library's one-object pictures (``scenes``), half fresh."""
    rng = random.Random(f"decision/{seed}")
    singles = [s for s in scenes if len(s.objects) == 1]
    cases = []
    for i in range(n):
        if i % 2 == 0 and singles:
            cases.append(Case(Request(rng.choice(singles), EVERYTHING), own=True))
        else:
            scene = sample_scene(rng, 1, min_objects=1)
            cases.append(Case(Request(scene, SHORT if rng.random() < 0.5 else EVERYTHING), own=False))
    return cases


def _words(request: Request) -> str:
    return detailed_caption(request.scene) if request.attributes == EVERYTHING else short_caption(request.scene)


def library_scenes(library, judge) -> list:
    """What each library picture shows, as the judge reads it (it reads world renders without error)."""
    from ..images import load_image

    return judge.read([load_image(library.root / path) for path in library.paths])


def query(brain, words: str, sampling: SamplingSettings):
    """The retrieval query of the image the brain makes for "Generate an image: WORDS" (as ``llmga generate``)."""
    conversation = Conversation()
    conversation.add_user(REFINE_REQUEST.format(text=words))
    messages, images = conversation.to_messages(brain.multimodal)
    complete(brain, BrainRequest(messages, images, sampling, prefill=OPEN_TAG))
    return brain.images[0].query


def measure_cases(brain, library, judge, cases: list[Case], progress=lambda items: items) -> list[Case]:
    """For each case: the library's best match for the brain's query, and whether the judge sees it answer."""
    from ..images import load_image

    sampling = SamplingSettings(temperature=0, max_new_tokens=24)
    for case in progress(cases):
        hit = library.search(query(brain, _words(case.request), sampling).detach().cpu().numpy()[None], k=1)[0][0]
        case.score, case.found = hit.score, str(hit.path)
        case.right = shows(judge.read([load_image(hit.path)])[0], case.request)
    return cases


def fit_decision(cases: list[Case], library: str = "") -> tuple[Decision, dict]:
    """Fit the decision on the even cases, report it on the odd ones (held out)."""
    fit, held = cases[0::2], cases[1::2]
    decision = Decision.fit([c.score for c in fit], [c.right for c in fit], library=library)

    def accuracy(choose, group):
        return sum(choose(c) == c.right for c in group) / max(1, len(group))

    ours = accuracy(lambda c: decision.retrieve(c.score), held)
    decision.accuracy, decision.held_out = ours, len(held)
    report = {
        "calibrated_on": len(fit), "held_out": len(held), "threshold": decision.threshold,
        "accuracy": ours, "always_paint": accuracy(lambda c: False, held),
        "always_retrieve": accuracy(lambda c: True, held),
        "retrieving_right": sum(c.right for c in held) / max(1, len(held)),
        "own_caption_retrieved": _share([decision.retrieve(c.score) and c.right for c in held if c.own]),
        "fresh_painted": _share([not decision.retrieve(c.score) for c in held if not c.own and not c.right]),
    }
    return decision, report


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None
