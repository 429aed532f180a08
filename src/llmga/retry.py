"""Asking the brain again, hotter, when its reply cannot be used as it is.

Two replies are asked again, up to :data:`RETRIES` more times at
:data:`RETRY_TEMPERATURE` or more with a seed per try:

- an edit whose prompt is the picture's own, which would give the picture back
  unchanged. A small world assistant meets some edits worded as it was never
  taught ("Lose the square", "不要方块了") with the last picture's prompt, word
  for word; sampled hotter, it often writes the edit asked for. The first reply
  that names the same task and paints no picture the conversation has already
  had is kept (asked to remove what is no longer there, a hotter reply may
  bring back an earlier one);
- a reply with letters of a script the user's last message does not use:
  one broken into another script ("I can'אים a cat on grass at night."), as a
  small model's may, or one in the language of earlier turns (Chinese prose
  after the user switched to English). A local brain is kept to the last
  message's scripts (:func:`allowed_scripts`: it masks every other script's
  tokens) from the first reply on, so no such letter reaches the screen; a
  brain that cannot mask is asked again hotter. Latin is always allowed, so a
  reply in English to a Chinese message is left to the brain.

``llmga eval assistant`` asks the same way, so its figures are what the assistant does. Decoding greedily, it
asks a local brain without the mask first and masked only where that reply strays: the reply kept is the
masked one token for token (a mask changes a greedy reply only where it bans the top token), and the count
asked again says how often the brain itself strays.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace

from .protocol import Reply, parse_reply
from .settings import MAX_SEED, SamplingSettings

#: how many more times a reply is asked, and how hot
RETRIES = 4
RETRY_TEMPERATURE = 0.8


def unchanged(reply: Reply, prompt: str | None, read: Callable[[str], str] = str) -> bool:
    """Whether ``reply`` paints ``prompt``, the picture being edited, again as it is, both read as the painters
    read them (``read``: a world caption's objects in any order are the same picture)."""
    return prompt is not None and read(prompt) in {read(p) for p in reply.prompts}


def edit_kept(first: Reply, seen: Collection[str], read: Callable[[str], str] = str) -> Callable[[Reply], bool]:
    """Whether a reply asked again for the edit ``first`` can be kept: it names the same task and paints none
    of the prompts ``seen`` in the conversation so far (read as ``read`` reads them)."""
    painted = {read(p) for p in seen}
    return lambda reply: bool(reply.prompts) and not {read(p) for p in reply.prompts} & painted \
        and reply.stated_task == first.stated_task


def scripts(text: str) -> set[str]:
    """The scripts of the letters in ``text`` ("LATIN", "CJK", "HEBREW", …)."""
    return {unicodedata.name(ch, "UNKNOWN").split()[0] for ch in text if ch.isalpha()}


def followed_text(system_prompt: str | None, message: str) -> str:
    """The text whose scripts a reply may use (:func:`allowed_scripts`): the system prompt and the user's last
    message, not earlier turns (a user may change language)."""
    return " ".join([system_prompt or "", message])


def allowed_scripts(conversation: str) -> frozenset[str]:
    """The scripts a reply may use: Latin and those of the ``conversation``'s own text."""
    return frozenset(scripts(conversation) | {"LATIN"})


def foreign_scripts(reply: Reply, conversation: str) -> set[str]:
    """Scripts of the reply's text outside :func:`allowed_scripts`."""
    return scripts(reply.text) - allowed_scripts(conversation)


def retry_sampling(settings: SamplingSettings, attempt: int) -> SamplingSettings:
    """The sampling of try ``attempt`` (1, 2, …): at least :data:`RETRY_TEMPERATURE`, with a seed of its own."""
    seed = None if settings.seed is None else (settings.seed + attempt) % (MAX_SEED + 1)
    return replace(settings, temperature=max(settings.temperature, RETRY_TEMPERATURE), seed=seed)


def ask_again(ask: Callable[[SamplingSettings, frozenset[str] | None], str], keep: Callable[[Reply], bool],
              settings: SamplingSettings, end_markers: Sequence[str] = (),
              scripts: frozenset[str] | None = None, as_asked_first: bool = False) -> tuple[int, str, Reply] | None:
    """Ask (``ask`` returns the raw reply under a sampling, kept to ``scripts``) until ``keep`` takes a reply;
    (the try, its raw text, its reply), or None after :data:`RETRIES`. With ``as_asked_first`` the first try
    keeps ``settings`` (it differs from the first reply by ``scripts`` alone), the others are hotter."""
    for attempt in range(1, RETRIES + 1):
        raw = ask(settings if as_asked_first and attempt == 1 else retry_sampling(settings, attempt), scripts)
        reply = parse_reply(raw, end_markers)
        if keep(reply):
            return attempt, raw, reply
    return None


def ask_again_in_scripts(ask: Callable[[SamplingSettings, frozenset[str] | None], str], conversation: str,
                         settings: SamplingSettings, end_markers: Sequence[str] = (),
                         masks: bool = False, masked_first: bool = False) -> tuple[int, str, Reply] | None:
    """A reply in another script asked again (:func:`ask_again`) until one keeps to the scripts of
    ``conversation`` (the text the reply follows: the user's last message); a brain that ``masks`` other
    scripts' tokens is kept to :func:`allowed_scripts`, first as the first reply was asked unless that reply
    was ``masked_first`` already (then every try is hotter)."""
    return ask_again(ask, lambda reply: not foreign_scripts(reply, conversation), settings, end_markers,
                     allowed_scripts(conversation) if masks else None, as_asked_first=masks and not masked_first)
