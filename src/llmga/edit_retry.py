"""An edit whose prompt is the picture's own would give the picture back unchanged: ask the brain again.

A small world assistant meets some edits worded as it was never taught ("Lose the square", "不要方块了")
with the last picture's prompt, word for word. Sampled hotter, it often writes the edit asked for. The
assistant asks up to :data:`RETRIES` more times and keeps the first reply that names the same task and
paints no picture the conversation has already had (asked to remove what is no longer there, a hotter
reply may bring back an earlier one); ``llmga eval assistant`` does the same, so its figures are what the
assistant does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import replace

from .protocol import Reply, parse_reply
from .settings import MAX_SEED, SamplingSettings

#: how many more times an unchanged edit is asked, and how hot
RETRIES = 4
RETRY_TEMPERATURE = 0.8


def unchanged(reply: Reply, prompt: str | None) -> bool:
    """Whether ``reply`` paints ``prompt``, the picture being edited, again as it is."""
    return prompt is not None and prompt in reply.prompts


def retry_sampling(settings: SamplingSettings, attempt: int) -> SamplingSettings:
    """The sampling of try ``attempt`` (1, 2, …): at least :data:`RETRY_TEMPERATURE`, with a seed of its own."""
    seed = None if settings.seed is None else (settings.seed + attempt) % (MAX_SEED + 1)
    return replace(settings, temperature=max(settings.temperature, RETRY_TEMPERATURE), seed=seed)


def ask_again(ask: Callable[[SamplingSettings], str], first: Reply, seen: Collection[str],
              settings: SamplingSettings, end_markers: Sequence[str] = ()) -> tuple[int, str, Reply] | None:
    """Ask (``ask`` returns the raw reply under a sampling) until a reply names ``first``'s task and paints
    none of the prompts ``seen`` in the conversation so far; (the try, its raw text, its reply), or None
    after :data:`RETRIES`."""
    for attempt in range(1, RETRIES + 1):
        raw = ask(retry_sampling(settings, attempt))
        reply = parse_reply(raw, end_markers)
        if reply.prompts and not set(reply.prompts) & set(seen) and reply.stated_task == first.stated_task:
            return attempt, raw, reply
    return None
