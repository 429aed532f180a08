"""Prompt embeddings for prompts of any length.

CLIP's text encoder reads 77 tokens: a begin token, 75 tokens of text and an
end token. LLMGA's prompts often run past 150 tokens, so the prompt is split
into 75-token windows, each wrapped in begin/end tokens and padded, all windows
(of the prompt and the negative prompt together) are encoded in one batched
text-encoder call, and the windows' hidden states are concatenated along the
sequence axis. The negative prompt is padded with empty windows to the same
length; identical windows are encoded once. For SDXL both encoders run on the same windows, their features are
concatenated, and the pooled embedding comes from the first window, as the
pipeline itself does for short prompts.

A prompt that fits one window encodes exactly as the diffusers pipeline encodes
it, so short prompts behave as they always did. Nothing is truncated: a prompt
over ``max_tokens`` is refused with :class:`~llmga.errors.PromptTooLongError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import PromptTooLongError
from ..settings import DEFAULT_MAX_PROMPT_TOKENS

WINDOW = 75


@dataclass
class PromptEmbeddings:
    """Encoded prompt and negative prompt, ready for a diffusers pipeline call."""

    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor
    pooled_prompt_embeds: torch.Tensor | None = None
    negative_pooled_prompt_embeds: torch.Tensor | None = None
    windows: int = 1
    tokens: int = 0

    def pipeline_kwargs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments for ``pipe(...)`` in place of ``prompt``/``negative_prompt``."""
        kwargs = {"prompt_embeds": self.prompt_embeds, "negative_prompt_embeds": self.negative_prompt_embeds}
        if self.pooled_prompt_embeds is not None:
            kwargs["pooled_prompt_embeds"] = self.pooled_prompt_embeds
            kwargs["negative_pooled_prompt_embeds"] = self.negative_pooled_prompt_embeds
        return kwargs


class LongPromptEncoder:
    """Encodes prompts of any length with one or two CLIP text encoders.

    ``penultimate`` selects the second-to-last hidden layer (SDXL) instead of
    the final output (SD 1.x/2.x). ``zero_empty_negative`` mirrors SDXL's
    ``force_zeros_for_empty_prompt``: no negative prompt gives zero embeddings.
    ``batched=False`` encodes windows one call at a time (for comparison only).
    """

    def __init__(
        self,
        tokenizers: Sequence[Any],
        text_encoders: Sequence[torch.nn.Module],
        penultimate: bool = False,
        zero_empty_negative: bool = False,
        max_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
        batched: bool = True,
    ) -> None:
        if len(tokenizers) != len(text_encoders) or not tokenizers:
            raise ValueError("need one tokenizer per text encoder, and at least one")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.tokenizers = list(tokenizers)
        self.text_encoders = list(text_encoders)
        self.penultimate = penultimate
        self.zero_empty_negative = zero_empty_negative
        self.max_tokens = max_tokens
        self.batched = batched

    @classmethod
    def from_pipeline(cls, pipe: Any, **kwargs: Any) -> LongPromptEncoder:
        """Build the encoder from a diffusers SD 1.x/2.x or SDXL pipeline's components."""
        pairs = [
            (getattr(pipe, tok, None), getattr(pipe, enc, None))
            for tok, enc in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"))
        ]
        pairs = [(t, e) for t, e in pairs if t is not None and e is not None]
        if not pairs:
            raise ValueError(f"{type(pipe).__name__} has no tokenizer/text encoder pair")
        is_xl = hasattr(pipe, "text_encoder_2")
        kwargs.setdefault("penultimate", is_xl)
        kwargs.setdefault(
            "zero_empty_negative", bool(getattr(pipe.config, "force_zeros_for_empty_prompt", False))
        )
        return cls([t for t, _ in pairs], [e for _, e in pairs], **kwargs)

    def token_ids(self, prompt: str, tokenizer: Any) -> list[int]:
        """The prompt's token ids without begin/end tokens, never truncated."""
        return tokenizer(prompt, add_special_tokens=False, truncation=False, verbose=False).input_ids

    def count_tokens(self, prompt: str) -> int:
        """Number of text tokens in ``prompt`` (the most any of the tokenizers needs)."""
        return max(len(ids) for ids in self._tokenize(prompt))

    def encode(self, prompt: str, negative_prompt: str | None = None) -> PromptEmbeddings:
        """Encode ``prompt`` and ``negative_prompt`` (None: empty, or zeros where the model wants that)."""
        prompt_ids = self._tokenize(prompt, "generation prompt")
        negative_ids = self._tokenize(negative_prompt or "", "negative prompt")
        zero_negative = negative_prompt is None and self.zero_empty_negative
        windows = [
            (self._windows(p, tok), self._windows(q, tok))
            for tok, p, q in zip(self.tokenizers, prompt_ids, negative_ids)
        ]
        n = max(max(len(p), len(q)) for p, q in windows)

        features, pooled = [], None
        for tok, encoder, (pos, neg) in zip(self.tokenizers, self.text_encoders, windows):
            empty = self._windows([], tok)[0]
            ids = pos + [empty] * (n - len(pos)) + neg + [empty] * (n - len(neg))
            hidden, pooled_out = self._run(encoder, tok, ids)
            features.append(hidden)
            if pooled_out is not None:
                pooled = pooled_out[[0, n]]  # first window of the prompt and of the negative
        hidden = torch.cat(features, dim=-1)  # (2n, 77, dim)
        prompt_embeds = hidden[:n].reshape(1, -1, hidden.shape[-1])
        negative_embeds = hidden[n:].reshape(1, -1, hidden.shape[-1])
        pooled_pos = pooled_neg = None
        if pooled is not None:
            pooled_pos, pooled_neg = pooled[:1], pooled[1:]
        if zero_negative:
            negative_embeds = torch.zeros_like(negative_embeds)
            pooled_neg = None if pooled_neg is None else torch.zeros_like(pooled_neg)
        n_tokens = max(len(ids) for ids in prompt_ids)
        return PromptEmbeddings(prompt_embeds, negative_embeds, pooled_pos, pooled_neg, windows=n, tokens=n_tokens)

    def _tokenize(self, text: str, what: str = "") -> list[list[int]]:
        """Token ids (no begin/end tokens) per tokenizer; with ``what``, refuse text past the limit."""
        ids = [self.token_ids(text, tok) for tok in self.tokenizers]
        n = max(len(i) for i in ids)
        if what and n > self.max_tokens:
            raise PromptTooLongError(
                f"the {what} is {n} tokens long; the limit is {self.max_tokens} "
                f"({-(-self.max_tokens // WINDOW)} windows of {WINDOW}). Shorten it or raise "
                "the limit (--max-prompt-tokens)."
            )
        return ids

    def _windows(self, ids: list[int], tokenizer: Any) -> list[list[int]]:
        """Split token ids into windows of WINDOW tokens, each ``[bos] + tokens + [eos] + padding``."""
        length = WINDOW + 2
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        chunks = [ids[i : i + WINDOW] for i in range(0, len(ids), WINDOW)] or [[]]
        return [
            [tokenizer.bos_token_id, *c, tokenizer.eos_token_id] + [pad] * (length - len(c) - 2) for c in chunks
        ]

    @torch.no_grad()
    def _run(
        self, encoder: torch.nn.Module, tokenizer: Any, ids: list[list[int]]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encode windows in one call (or one by one); return hidden states and pooled output.

        Identical windows (the empty windows that pad a negative prompt) are encoded once.
        """
        device = encoder.device
        unique, inverse = torch.unique(torch.tensor(ids, device=device), dim=0, return_inverse=True)
        mask = None
        if getattr(encoder.config, "use_attention_mask", False):
            positions = torch.arange(unique.shape[1], device=device)[None]
            mask = (positions <= _eos_positions(unique, tokenizer)[:, None]).long()
        batches = [slice(None)] if self.batched else [slice(i, i + 1) for i in range(len(unique))]
        hidden, pooled = [], []
        for b in batches:
            out = encoder(unique[b], attention_mask=None if mask is None else mask[b],
                          output_hidden_states=self.penultimate)
            hidden.append(out.hidden_states[-2] if self.penultimate else out[0])
            if out[0].ndim == 2:  # CLIPTextModelWithProjection: text_embeds first
                pooled.append(out[0])
        return torch.cat(hidden)[inverse], (torch.cat(pooled)[inverse] if pooled else None)


def _eos_positions(ids: torch.Tensor, tokenizer: Any) -> torch.Tensor:
    """Index of the first end token in each window (the padding after it is masked)."""
    return (ids == tokenizer.eos_token_id).int().argmax(dim=1)
