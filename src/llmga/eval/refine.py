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

import torch

from ..brain import Brain, SamplingSettings, complete
from ..conversation import Conversation
from ..data.refine_demo import Request, held_out
from ..protocol import parse_reply

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


def replies(brain: Brain, questions: list[str], max_new_tokens: int = 96, batch_size: int = 16) -> list[str]:
    """The brain's greedy replies, under serving conditions; batched for local transformers models."""
    conversations = []
    for question in questions:
        conv = Conversation()
        conv.add_user(question)
        conversations.append(conv.to_messages(brain.multimodal)[0])
    if not hasattr(brain, "model") or brain.multimodal:
        settings = SamplingSettings(temperature=0, max_new_tokens=max_new_tokens)
        return [complete(brain, messages, settings=settings) for messages in conversations]
    tokenizer, model = brain.tokenizer, brain.model
    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in conversations]
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            generated = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                       pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        new = generated[:, batch["input_ids"].shape[1] :]
        out.extend(tokenizer.batch_decode(new, skip_special_tokens=False))
    return out


def score(items: list[tuple[str, Request | None]], answers: list[str], end_markers=()) -> RefineScores:
    """Score ``answers`` to ``items`` (see the module docstring)."""
    well, faithful, details = 0, 0, []
    n_requests = sum(1 for _, r in items if r is not None)
    for (_, request), answer in zip(items, answers):
        reply = parse_reply(answer, end_markers)
        if request is None:
            well += int(not reply.prompts and reply.empty_prompts == 0 and bool(reply.text))
            continue
        ok = len(reply.prompts) == 1 and reply.empty_prompts == 0
        well += int(ok)
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
    answers = replies(brain, [q for q, _ in items], max_new_tokens)
    return score(items, answers, brain.end_markers)
