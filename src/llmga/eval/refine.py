"""How well a brain refines prompts: well-formed replies, faithfulness and variety.

Measured on held-out requests (:func:`llmga.data.refine_demo.held_out`: subjects
never seen in training) under serving conditions (our system prompt, the
model's chat template, greedy decoding):

- well-formed: an image request gets exactly one non-empty generation prompt,
  a plain question gets none and a non-empty answer;
- faithful: every content word of the request (subject, attributes, action,
  place, time) appears in the prompt, so "a siamese cat" never becomes "a
  Bengal cat" (malformed replies count as unfaithful);
- variety: the share of distinct detail phrases (the prompt minus the request)
  across requests, and the share of the most common one (a stock phrase).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass

from ..brain import Brain
from ..data.refine_demo import Request, held_out
from ..protocol import parse_reply
from .replies import answers, well_formed

STOPWORDS = {"a", "an", "the", "on", "in", "at", "of", "by", "to", "with", "through", "under", "from", "for", "and",
             "above", "near", "edge"}


@dataclass
class RefineScores:
    """The figures, as shares in [0, 1], and the counts behind them."""

    items: int
    requests: int
    well_formed: float
    faithful: float
    distinct_details: float
    top_detail_share: float

    def as_dict(self) -> dict:
        return asdict(self)


def content_words(phrase: str) -> list[str]:
    """The words of a request that must survive into the prompt."""
    return [w for w in re.findall(r"[a-z][a-z'-]*", phrase.lower()) if w not in STOPWORDS]


def is_faithful(prompt: str, request: Request) -> bool:
    """Every content word of the request appears in the prompt (as a word)."""
    words = set(re.findall(r"[a-z][a-z'-]*", prompt.lower()))
    return all(w in words for w in content_words(request.phrase))


def detail_of(prompt: str, request: Request) -> str:
    """What the prompt adds to the request."""
    low = prompt.lower()
    return " ".join(low.replace(request.phrase.lower(), " ").replace(",", " ").split())


def score(items: list[tuple[str, Request | None]], replies: list[str], end_markers=()) -> RefineScores:
    """Score ``replies`` to ``items`` (see the module docstring)."""
    well, faithful, details = 0, 0, []
    n_requests = sum(1 for _, r in items if r is not None)
    for (_, request), answer in zip(items, replies, strict=True):
        reply = parse_reply(answer, end_markers)
        ok = well_formed(reply, wants_prompt=request is not None)
        well += int(ok)
        if request is None:
            continue
        if ok and is_faithful(reply.prompts[0], request):
            faithful += 1
        if ok:
            details.append(detail_of(reply.prompts[0], request))
    counts = Counter(details)
    return RefineScores(
        items=len(items),
        requests=n_requests,
        well_formed=well / max(1, len(items)),
        faithful=faithful / max(1, n_requests),
        distinct_details=len(counts) / max(1, len(details)),
        top_detail_share=(counts.most_common(1)[0][1] / len(details)) if details else 0.0,
    )


def evaluate(brain: Brain, n: int = 100, seed: int = 0, max_new_tokens: int = 96) -> RefineScores:
    """Generate replies to ``n`` held-out items and score them."""
    items = held_out(n, seed)
    return score(items, answers(brain, [q for q, _ in items], max_new_tokens=max_new_tokens), brain.end_markers)
