"""The ``[IMG1]`` … ``[IMGr]`` tokens: added to a brain, written into training replies, found in token ids."""

from __future__ import annotations

import copy
import re
from typing import Any

import torch

from ..protocol import ReplyParser, tag_prompt
from .heads import ControlConfig

_GPT = ("gpt", "assistant")


def add_image_tokens(tokenizer: Any, model: Any, config: ControlConfig) -> list[int]:
    """Add the ``[IMG]`` tokens to ``tokenizer`` and make room for them in ``model``; return their ids.

    New rows start random (``mean_resizing=False``): training or the saved adapter sets them, so a
    model loads the same way every time.
    """
    tokenizer.add_tokens(config.names, special_tokens=True)
    ids = tokenizer.convert_tokens_to_ids(config.names)
    rows = model.get_input_embeddings().num_embeddings
    if max(ids) >= rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return ids


def control_record(record: dict, config: ControlConfig) -> tuple[dict, list[str]]:
    """``record`` with each generation prompt of its replies replaced by the ``[IMG]`` tokens, and the
    replaced prompts in order (the captions the mapper learns to stand for).

    ``tagged`` keeps the reply and the tags around the tokens (LLMGA-Embedding); ``bare`` answers an
    image request with the tokens alone (GILL-style). Replies without prompts stay as they are.
    """
    out, captions = copy.deepcopy(record), []
    for turn in out.get("conversations", []):
        if turn.get("from", turn.get("role")) not in _GPT or not isinstance(turn.get("value"), str):
            continue
        text, prompts = _replace(turn["value"], config)
        if prompts:
            turn["value"], captions = text, captions + prompts
    return out, captions


def _replace(reply: str, config: ControlConfig) -> tuple[str, list[str]]:
    parser = ReplyParser()
    parts, prompts = [], []
    for piece in [*parser.feed(reply), *parser.close()]:
        if piece.kind == "text":
            parts.append(piece.text)
        elif piece.kind == "prompt_end" and piece.text:
            prompts.append(piece.text)
            parts.append(tag_prompt(config.group) if config.style == "tagged" else f" {config.group} ")
    if config.style == "bare":
        return " ".join(config.group for _ in prompts), prompts
    return re.sub(r"[ \t]+", " ", "".join(parts)).strip(), prompts


def group_starts(input_ids: torch.Tensor, ids: list[int]) -> list[int]:
    """Positions in a 1-D id sequence where a whole ``[IMG1]`` … ``[IMGr]`` group begins."""
    want = torch.tensor(ids, device=input_ids.device)
    starts = (input_ids == ids[0]).nonzero().flatten().tolist()
    return [s for s in starts if s + len(ids) <= len(input_ids) and torch.equal(input_ids[s : s + len(ids)], want)]
