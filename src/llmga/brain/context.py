"""Fitting a conversation into a model's context, as every local brain does.

A long chat outgrows the model's context window: the oldest exchanges (after
the system prompt) are left out until the reply has room, and the newest
message always stays. A message too long to fit on its own is a clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from ..conversation import Message
from ..errors import BrainError

#: a conversation is trimmed until the reply has at least this many tokens of room (or all it asked for)
MIN_REPLY_TOKENS = 64

Built = TypeVar("Built")


def fit_conversation(messages: Sequence[Message], build: Callable[[list[Message], list[Message]], tuple[Built, int]],
                     context: int | None, wanted: int) -> Built:
    """``build(kept, dropped)`` (the model's inputs and their length in tokens) for the longest tail of the
    conversation whose reply has room for ``wanted`` tokens or :data:`MIN_REPLY_TOKENS`, whichever is fewer.

    Exchanges go two messages at a time, oldest first; the system prompt and the newest message always stay
    (whether those alone fit is :func:`reply_room`'s to say).
    """
    first = 1 if messages and messages[0]["role"] == "system" else 0
    dropped = 0
    while True:
        kept = [*messages[:first], *messages[first + dropped:]]
        built, tokens = build(kept, list(messages[first:first + dropped]))
        if context is None or tokens + min(wanted, MIN_REPLY_TOKENS) <= context or len(kept) - first <= 1:
            return built
        dropped += min(2, len(kept) - first - 1)


def reply_room(prompt_tokens: int, wanted: int, context: int | None, name: str) -> int:
    """How many new tokens fit after ``prompt_tokens``: ``wanted`` or fewer; an error when none do."""
    if context is None:
        return wanted
    if prompt_tokens >= context - 1:
        raise BrainError(
            f"the conversation is {prompt_tokens} tokens long, beyond the {context}-token context of "
            f"{name}; start a new conversation or send a shorter message"
        )
    return min(wanted, context - prompt_tokens)
