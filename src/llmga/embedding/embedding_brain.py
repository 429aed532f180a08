"""A brain that paints through ``[IMG]`` tokens: it writes its reply, and each image as r tokens whose
hidden states become the painter's prompt embeddings.

:class:`EmbeddingBrain` implements the :class:`~llmga.brain.base.Brain`
protocol, so the assistant loop runs unchanged: each ``[IMG]`` group reaches
the protocol inside generation tags (``<gen_img>[IMG1]…[IMG8]</gen_img>``,
the "prompt" of that image), and the group's embeddings wait in
:attr:`EmbeddingBrain.images` until the painter (:mod:`.embedding_painter`)
takes them. Decoding follows GILL: once ``[IMG1]`` is written the other r−1
tokens are forced (and, in a tagged reply, the closing tag), they are never
written alone, a tagged reply's opened generation tag is followed by the
group (never by words: the prompt *is* the embeddings), and ``image_frequency``
multiplies the odds of ``[IMG1]`` (GILL's "frequency multiplier for returning
images"), on top of the model's calibrated ``image_bias``. A reply opened with
a generation tag (``llmga generate``) starts with ``[IMG1]``.

The hidden states are the last layer's at the r positions, as in training:
read by running the groups' tokens again on generation's own key/value cache
(cut back to the first group), so the prompt is not computed twice; a model
whose cache cannot be cut is run once more over the whole finished reply.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .. import registry
from ..conversation import Message
from ..errors import BrainError, InvalidInputError, ModelNotFoundError
from ..protocol import CLOSE_TAG, OPEN_TAG, tag_prompt
from ..settings import RuntimeSettings
from .heads import ADAPTER_DIR, ControlConfig, ControlHeads, read_config
from .tokens import add_image_tokens, group_starts


@dataclass
class ImageEmbeddings:
    """What one ``[IMG]`` group stands for: the painter's prompt embeddings and, if trained, a retrieval query."""

    prompt_embeds: torch.Tensor  # (1, 77, width)
    pooled: torch.Tensor | None = None  # (1, pooled width): SDXL
    query: torch.Tensor | None = None  # (clip dim,) unit vector


class ImageTokenRules:
    """A ``LogitsProcessor`` with GILL's rules for the ``[IMG]`` tokens (batch of one).

    ``sequence`` is what ``[IMG1]`` starts: the r tokens, then (tagged replies) the closing tag's tokens.
    ``opened(new_ids)`` says whether the reply so far ends with an opened generation tag (tagged replies:
    what follows it is the group, never words).
    """

    def __init__(self, sequence: list[int], prompt_length: int, start_with_image: bool, frequency: float,
                 tokens: int, opened: Callable[[list[int]], bool] | None = None) -> None:
        self.sequence, self.prompt_length, self.tokens = sequence, prompt_length, tokens
        self.start_with_image, self.frequency, self.opened = start_with_image, frequency, opened

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        new = input_ids[0, self.prompt_length :].tolist()
        first = self.sequence[0]
        written = new[::-1].index(first) + 1 if first in new else None  # tokens of the sequence written so far
        begins = (not new and self.start_with_image) or bool(new and self.opened and self.opened(new))
        if begins or (written is not None and written < len(self.sequence)):
            out = torch.full_like(scores, -math.inf)
            out[:, self.sequence[0 if begins else written]] = 0.0
            return out
        scores = scores.clone()
        scores[:, self.sequence[1 : self.tokens]] = -math.inf
        scores[:, first] += math.log(self.frequency) if self.frequency > 0 else -math.inf
        return scores


class EmbeddingBrain:
    """A transformers brain with ``[IMG]`` tokens and the heads that turn them into embeddings."""

    def __init__(self, brain, heads: ControlHeads, ids: list[int], image_frequency: float = 1.0,
                 name: str = "", folder: Path | None = None) -> None:
        if image_frequency < 0:
            raise InvalidInputError(f"the image frequency multiplier must be >= 0, got {image_frequency}")
        self.inner, self.heads, self.ids = brain, heads, ids
        self.model, self.tokenizer = brain.model, brain.tokenizer
        self.multimodal, self.end_markers = brain.multimodal, brain.end_markers
        self.image_frequency = image_frequency
        self.name = name or brain.name
        #: the model's folder (its decision.json, if calibrated, lives there)
        self.folder = folder
        #: the embeddings of the last reply's images, in order, waiting for the painter
        self.images: deque[ImageEmbeddings] = deque()

    @property
    def config(self) -> ControlConfig:
        return self.heads.config

    def describe(self) -> str:
        return (f"{self.name} (embedding control: {self.config.tokens} [IMG] tokens, {self.config.mapper} "
                f"mapper, {self.config.style} replies, on {self.inner.describe()})")

    def stream(self, request) -> Iterator[str]:
        """Write the reply; each ``[IMG]`` group is yielded inside generation tags and its embeddings queued."""
        self.images.clear()
        settings, prefill = request.settings, request.prefill
        start_with_image = prefill.rstrip().endswith(OPEN_TAG)
        bare = self.config.style == "bare"
        model_prefill = prefill.rstrip()[: -len(OPEN_TAG)] if bare and start_with_image else prefill
        inputs = self.inner._inputs(self._as_trained(request.messages), request.images, model_prefill)
        length = inputs["input_ids"].shape[1]
        closing = [] if bare else self.tokenizer(CLOSE_TAG, add_special_tokens=False).input_ids
        frequency = self.image_frequency * math.exp(self.config.image_bias)  # the user's, and the calibrated one
        rules = ImageTokenRules(self.ids + closing, length, start_with_image, frequency, len(self.ids),
                                None if bare else self._opened)
        kwargs = dict(max_new_tokens=self.inner._room(length, settings.max_new_tokens), logits_processor=[rules],
                      do_sample=settings.temperature > 0, repetition_penalty=settings.repetition_penalty,
                      pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        if settings.temperature > 0:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        try:
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
            with torch.inference_mode():
                generated = self.model.generate(**inputs, **kwargs, return_dict_in_generate=True)
                full = generated.sequences
                starts = [length + s for s in group_starts(full[0, length:], self.ids)]
                if starts:
                    self.images.extend(self._embeddings(inputs, full, starts, generated.past_key_values))
        except Exception as exc:  # torch/transformers errors: one clear line for the user
            raise BrainError(f"{self.name} failed while generating: {exc}") from exc
        shown_prefill = model_prefill if bare and start_with_image else prefill  # a bare group brings its own tags
        yield shown_prefill + self._render(full[0, length:], starts, length)

    def _opened(self, new: list[int]) -> bool:
        """Whether the reply so far ends with an opened generation tag."""
        return self.tokenizer.decode(new[-8:], skip_special_tokens=False).rstrip().endswith(OPEN_TAG)

    def _as_trained(self, messages: Sequence[Message]) -> list[Message]:
        """The conversation as the model was trained to see it: a bare model never saw the tags it is shown in."""
        if self.config.style != "bare":
            return list(messages)
        shown, group = tag_prompt(self.config.group), self.config.group

        def plain(content):
            if isinstance(content, str):
                return content.replace(shown, group)
            return [{**part, "text": plain(part["text"])} if part.get("type") == "text" else part for part in content]

        return [{**m, "content": plain(m["content"])} if m["role"] == "assistant" else m for m in messages]

    def _render(self, new: torch.Tensor, starts: list[int], offset: int) -> str:
        """The reply's text, each group written out whole (and, for a bare model, inside generation tags)."""
        group = tag_prompt(self.config.group) if self.config.style == "bare" else self.config.group
        pieces, at = [], 0
        for start in (s - offset for s in starts):
            pieces += [self.tokenizer.decode(new[at:start], skip_special_tokens=False), group]
            at = start + self.config.tokens
        pieces.append(self.tokenizer.decode(new[at:], skip_special_tokens=False))
        return "".join(pieces)

    def _embeddings(self, inputs: dict, full: torch.Tensor, starts: list[int], cache=None) -> list[ImageEmbeddings]:
        """Each group's states through the heads."""
        states, embedded = self.states(inputs, full, starts, cache)
        sequence, pooled = self.heads.embeddings(states, embedded)
        queries = self.heads.query(states) if self.heads.retrieval is not None else [None] * len(starts)
        return [ImageEmbeddings(sequence[i : i + 1], None if pooled is None else pooled[i : i + 1], queries[i])
                for i in range(len(starts))]

    def states(self, inputs: dict, full: torch.Tensor, starts: list[int], cache=None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """The last-layer states and the input embeddings of the groups starting at ``starts`` in the finished
        reply ``full``, two ``(g, r, hidden)``: from the tokens after ``starts[0]`` run on generation's ``cache``
        cut back to there (it is changed), else (no cache, or one that cannot be cut) from the whole reply."""
        first = starts[0]
        if _cut(cache, first):
            run = {"input_ids": full[:, first:], "attention_mask": torch.ones_like(full), "past_key_values": cache}
        else:
            first, run = 0, {**inputs, "input_ids": full, "attention_mask": torch.ones_like(full)}
        hidden = self.model(**run, output_hidden_states=True).hidden_states[-1][0]
        offsets = torch.tensor(starts, device=full.device)[:, None] + torch.arange(self.config.tokens,
                                                                                  device=full.device)
        return hidden[offsets - first].float(), self.model.get_input_embeddings()(full[0, offsets]).float()


def _cut(cache, length: int) -> bool:
    """Cut a dynamic key/value ``cache`` back to its first ``length`` positions; whether it could be."""
    from transformers import DynamicCache

    if not isinstance(cache, DynamicCache) or cache.get_seq_length() < length:
        return False
    try:
        cache.crop(length - cache.get_seq_length())  # a negative count removes that many from the end
    except (ValueError, RuntimeError):  # a sliding-window layer past its window keeps no way back
        return False
    return cache.get_seq_length() == length


def control_folder(spec: str | Path) -> Path:
    """The folder of the embedding-control model ``spec``: a shipped name or a path."""
    return registry.shipped(str(spec), registry.CONTROL) or Path(spec).expanduser()


def load_control_brain(spec: str | Path, runtime: RuntimeSettings | None = None,
                       image_frequency: float = 1.0) -> EmbeddingBrain:
    """The embedding-control model ``spec`` on its base brain: the base loads as any brain does, gets the
    ``[IMG]`` tokens, and the adapter (token embeddings, and LoRA if trained) is merged in."""
    from peft import PeftModel

    from ..brain import load_brain

    runtime = runtime or RuntimeSettings()
    folder = control_folder(spec)
    config = read_config(folder)
    if runtime.brain_quantize:
        raise InvalidInputError("embedding control merges its adapter into the full-precision base; "
                                "drop --brain-quantize")
    brain = load_brain(config.base, runtime=replace(runtime, brain_engine="transformers"))  # its torch model
    if not hasattr(brain, "model"):
        raise ModelNotFoundError(f"the embedding-control model {folder} names the base {config.base!r}, which is "
                                 "not a local transformers model")
    ids = add_image_tokens(brain.tokenizer, brain.model, config)
    brain.model = PeftModel.from_pretrained(brain.model, folder / ADAPTER_DIR).merge_and_unload().eval()
    heads = ControlHeads.load(folder).to(brain.model.device)
    return EmbeddingBrain(brain, heads, ids, image_frequency, name=str(spec), folder=folder)
