"""Keeping what a brain writes inside a generation tag to a form, token by token.

A world assistant is trained to write its prompt in the world's caption
grammar (:data:`llmga.world.captions.CAPTION_FORM`), and the world painters
read nothing else; a small model may still slip out of it on wordings it never
saw ("a small green square left" for "to its left", "at the middle middle").
Where a :class:`~llmga.brain.base.BrainRequest` names a ``prompt_form``, a
local brain looks, at each token inside an open tag, at the :data:`TOP` likeliest
tokens and gives only those that keep the prompt a beginning of the form (or
close the tag after a whole one) a chance. Outside a tag nothing changes, and
where none of them fits the step is left as it was. Looking at a few tokens,
not the whole vocabulary, is what keeps it cheap: llama.cpp's own grammars check
every one of Gemma 3's 262,144 tokens at every step, which doubled a reply's time
on two CPU cores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..protocol import CLOSE_TAG, last_open_tag_end

#: how many of the likeliest tokens are looked at, each step inside a tag
TOP = 32


def fits(form, prompt: str) -> bool:
    """Whether ``prompt``, written so far inside a tag, can still become a whole prompt of ``form`` (anything
    with a ``regex`` pattern's ``fullmatch(text, partial=...)``) followed by the closing tag."""
    cut = prompt.find("<")
    if cut < 0:
        return form.fullmatch(prompt, partial=True) is not None
    rest = prompt[cut:]
    return form.fullmatch(prompt[:cut]) is not None and (CLOSE_TAG.startswith(rest) or rest.startswith(CLOSE_TAG))


def keep_to_form(form, written: Sequence[int], text_of: Callable[[Sequence[int]], str], logits: np.ndarray,
                 prefill: str = "") -> np.ndarray:
    """``logits`` for the token after ``written`` (the reply's tokens so far, after ``prefill``; ``text_of``
    turns tokens into text), limited to the :data:`TOP` likeliest tokens that keep an open tag's prompt to
    ``form``; unchanged outside a tag, or where none of them fits."""
    before = text_of(written)
    start = last_open_tag_end(prefill + before)
    if start is None:
        return logits
    prompt = (prefill + before)[start:]
    top = np.argpartition(-logits, TOP)[:TOP] if len(logits) > TOP else np.arange(len(logits))
    keep = [token for token in top if np.isfinite(logits[token])
            and (piece := text_of([*written, int(token)])[len(before):]) and fits(form, prompt + piece)]
    if not keep:
        return logits
    limited = np.full_like(logits, -np.inf)
    limited[keep] = logits[keep]
    return limited
