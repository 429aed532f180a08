"""Stage-1 training samples: LLaVA-format conversations to token ids and labels.

A sample is a LLaVA-style record::

    {"id": "...", "image": "images/0001.png",
     "conversations": [{"from": "human", "value": "<image>\\nGenerate a similar image."},
                       {"from": "gpt", "value": "Sure! <gen_img>...</gen_img>"}]}

It becomes the same chat messages the assistant sends at inference (our system
prompt first), formatted by the model's own chat template. The loss covers
only the assistant's turns: the text is cut at each assistant turn's
boundaries (found by rendering the conversation up to that turn with and
without it), the pieces are tokenized separately, and only the assistant
pieces (their end-of-turn token included) get labels. Tokenizing at the
boundary is exactly what inference does: the model writes its turn after the
generation prompt. A record with ``"train_on": "last"`` trains only its last
assistant turn: the earlier ones are context, read but not learnt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..conversation import SYSTEM_PROMPT, Message
from ..errors import InvalidInputError

IGNORE = -100
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


@dataclass
class Sample:
    """One tokenized conversation."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor | None = None


def load_records(paths: Sequence[str | Path]) -> list[tuple[dict, Path]]:
    """Read LLaVA-format JSON (a list) or JSONL files; each record with the folder its image paths are relative to."""
    records = []
    for path in map(Path, paths):
        if not path.is_file():
            raise InvalidInputError(f"training data file {path} does not exist")
        text = path.read_text()
        try:
            items = json.loads(text) if path.suffix == ".json" else [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"training data file {path} is not valid JSON: {exc}") from exc
        records.extend((item, path.parent) for item in items)
    return records


def to_messages(record: dict, multimodal: bool, system_prompt: str = SYSTEM_PROMPT) -> list[Message]:
    """The record's conversation as HF chat messages; ``<image>`` in a turn becomes an image part."""
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise InvalidInputError(f"sample {record.get('id', '?')}: no 'conversations' list")
    messages: list[Message] = [_message("system", system_prompt, multimodal)] if system_prompt else []
    for turn in turns:
        role = _ROLES.get(turn.get("from", turn.get("role", "")))
        value = turn.get("value", turn.get("content"))
        if role is None or not isinstance(value, str):
            raise InvalidInputError(f"sample {record.get('id', '?')}: malformed turn {turn!r}")
        messages.append(_message(role, value, multimodal))
    if messages[-1]["role"] != "assistant":
        raise InvalidInputError(f"sample {record.get('id', '?')}: the last turn is not the assistant's")
    return messages


def _message(role: str, value: str, multimodal: bool) -> Message:
    if not multimodal:
        return {"role": role, "content": value.replace("<image>", "").strip()}
    n_images = value.count("<image>")
    text = value.replace("<image>", "").strip()
    return {"role": role, "content": [{"type": "image"}] * n_images + [{"type": "text", "text": text}]}


class ChatEncoder:
    """Turns records into :class:`Sample` with labels on the assistant's turns only.

    ``tokenizer`` is the model's tokenizer; ``processor`` its multimodal
    processor (None for text-only models). ``max_length`` refuses longer
    samples (no silent truncation).
    """

    def __init__(self, tokenizer: Any, processor: Any = None, max_length: int = 2048,
                 system_prompt: str = SYSTEM_PROMPT) -> None:
        self.tokenizer = tokenizer
        self.processor = processor
        self.max_length = max_length
        self.system_prompt = system_prompt
        self._template = processor if processor is not None else tokenizer

    def encode(self, record: dict, image_root: Path) -> Sample:
        """Tokenize one record; raise InvalidInputError naming the sample when it is broken."""
        sample_id = record.get("id", "?")
        messages = to_messages(record, self.processor is not None, self.system_prompt)
        images = self._images(record, image_root) if self.processor is not None else []
        n_placeholders = sum(1 for m in messages if isinstance(m["content"], list)
                             for part in m["content"] if part["type"] == "image")
        if n_placeholders != len(images):
            raise InvalidInputError(f"sample {sample_id}: {n_placeholders} <image> placeholder(s) but "
                                    f"{len(images)} image(s)")
        ids, labels, pixel_values = [], [], []
        remaining = list(images)
        for text, is_answer in self._pieces(messages, last_only=record.get("train_on") == "last"):
            n = text.count("<image>") if self.processor is not None else 0
            piece_images, remaining = remaining[:n], remaining[n:]
            encoded = self._tokenize(text, piece_images)
            ids.extend(encoded["input_ids"])
            labels.extend(encoded["input_ids"] if is_answer else [IGNORE] * len(encoded["input_ids"]))
            if "pixel_values" in encoded:
                pixel_values.append(encoded["pixel_values"])
        if len(ids) > self.max_length:
            raise InvalidInputError(f"sample {sample_id}: {len(ids)} tokens, over max_length {self.max_length}")
        return Sample(torch.tensor(ids), torch.tensor(labels), torch.cat(pixel_values) if pixel_values else None)

    def _pieces(self, messages: list[Message], last_only: bool = False) -> list[tuple[str, bool]]:
        """The rendered conversation cut into (text, trained) pieces: each assistant turn is trained (or only
        the last with ``last_only``)."""
        render = self._template.apply_chat_template
        full = render(messages, tokenize=False)
        pieces, pos = [], 0
        for i, message in enumerate(messages):  # the last message is the assistant's (:func:`to_messages`)
            if message["role"] != "assistant" or (last_only and i != len(messages) - 1):
                continue
            start = len(render(messages[:i], tokenize=False, add_generation_prompt=True))
            end = len(render(messages[: i + 1], tokenize=False))
            if not full.startswith(render(messages[: i + 1], tokenize=False)) or start > end:
                raise InvalidInputError("the chat template does not render conversations prefix by prefix; "
                                        "llmga cannot find the assistant's turns to train on")
            pieces += [(full[pos:start], False), (full[start:end], True)]
            pos = end
        if pos < len(full):
            pieces.append((full[pos:], False))
        return [(text, answer) for text, answer in pieces if text]

    def _tokenize(self, text: str, images: list[Image.Image]) -> dict:
        if self.processor is not None and images:
            out = self.processor(text=text, images=images, return_tensors="pt", add_special_tokens=False)
            return {"input_ids": out["input_ids"][0].tolist(), "pixel_values": out["pixel_values"]}
        return {"input_ids": self.tokenizer(text, add_special_tokens=False).input_ids}

    @staticmethod
    def _images(record: dict, root: Path) -> list[Image.Image]:
        names = record.get("image") or []
        names = [names] if isinstance(names, str) else names
        images = []
        for name in names:
            path = root / name
            try:
                with Image.open(path) as image:
                    images.append(image.convert("RGB"))
            except (OSError, ValueError) as exc:
                raise InvalidInputError(f"sample {record.get('id', '?')}: cannot read image {path}: {exc}") from exc
        return images


def collate(samples: list[Sample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch; padding is masked out of attention and loss."""
    length = max(len(s.input_ids) for s in samples)
    ids = torch.full((len(samples), length), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), length), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(samples), length), dtype=torch.long)
    for row, s in enumerate(samples):
        n = len(s.input_ids)
        ids[row, :n], labels[row, :n], mask[row, :n] = s.input_ids, s.labels, 1
    batch = {"input_ids": ids, "labels": labels, "attention_mask": mask}
    pixels = [s.pixel_values for s in samples if s.pixel_values is not None]
    if pixels:
        batch["pixel_values"] = torch.cat(pixels)
    return batch


class LengthGroupedBatches(torch.utils.data.Sampler):
    """Batches of samples of about the same length, so little of a batch is padding.

    Each pass shuffles the samples, sorts each window of ``window`` batches' worth
    by length, cuts it into batches and shuffles the batches (seeded by ``seed`` and the pass).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, window: int = 50) -> None:
        self.lengths, self.batch_size, self.seed, self.window, self.passes = list(lengths), batch_size, seed, window, 0

    def __iter__(self):
        import random

        rng = random.Random(f"{self.seed}/{self.passes}")
        self.passes += 1
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        span = self.batch_size * self.window
        batches = []
        for start in range(0, len(order), span):
            chunk = sorted(order[start : start + span], key=self.lengths.__getitem__)
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        rng.shuffle(batches)
        yield from batches

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)
