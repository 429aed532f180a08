"""Prompt-to-prompt attention control (Hertz et al., arXiv 2208.01626) as diffusers attention processors.

During an edit the UNet runs batches in which one row is the *source* branch
(the source prompt on the source image's trajectory) and one the *target*
branch (the target prompt). :func:`attention_control` wraps each of the UNet's
own processors in an :class:`EditAttnProcessor` and puts the originals back
afterwards, also when the edit fails. For the target row only, the wrapper
does what the shared :class:`EditControl` asks at the current step:

- cross-attention replacement (first ``cross_steps`` steps): the target's
  attention over its tokens is the source's attention carried over by a
  :class:`TokenAlignment` (word swap maps word k to word k; refinement keeps
  matching words and lets new words keep their own attention);
- self-attention injection (first ``self_steps`` steps, coarse layers only, as
  prompt-to-prompt does at 16x16 and below): the target uses the source's
  self-attention maps, which carries the layout over;
- re-weighting (every step): chosen target tokens' attention is scaled.

Each of these is linear in the columns of the attention map, so it folds into
the values: ``(P_src M) V = P_src (M V)``. The wrapper calls
``scaled_dot_product_attention`` with the source's queries and keys and
remapped target values and never builds an attention map, except for the few
token columns recorded for the blend mask. Other rows (unconditional ones) and
steps with nothing to do go straight to the original processor.

Long prompts are windows of 77 positions (begin token, 75 text tokens, end
token, padding) concatenated along the sequence. Alignment works on text-token
indices and places each at its window position, so a word pushed into the next
window by an insertion still takes its attention from the source's copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from itertools import accumulate
from typing import Any, Literal

import torch
import torch.nn.functional as F

from ..errors import InvalidInputError
from .long_prompt import WINDOW

SPAN = WINDOW + 2  # positions per window: begin token, 75 text tokens, end token/padding
AlignmentMode = Literal["auto", "replace", "refine"]
Word = tuple[int, ...]


def position(index: int) -> int:
    """Sequence position of text token ``index`` in windowed embeddings."""
    return (index // WINDOW) * SPAN + 1 + index % WINDOW


def split_words(ids: Sequence[int], tokenizer: Any) -> list[Word]:
    """Group token ids into words (CLIP marks a word's last token with ``</w>``; else one token a word)."""
    tokens = tokenizer.convert_ids_to_tokens(list(ids))
    if not any(t.endswith("</w>") for t in tokens):
        return [(i,) for i in ids]
    words: list[Word] = []
    current: list[int] = []
    for i, token in zip(ids, tokens):
        current.append(i)
        if token.endswith("</w>"):
            words.append(tuple(current))
            current = []
    if current:
        words.append(tuple(current))
    return words


@dataclass
class TokenAlignment:
    """How each target position takes its cross-attention from the source.

    ``mapper`` (L x L, L = windows x 77): target attention = source attention @ mapper.
    ``keep`` (L): 1 where the target takes the mapped source attention, 0 for new
    words, which keep their own. ``changed_source``/``changed_target``: positions
    of the words that differ (what the blend mask looks at).
    """

    mapper: torch.Tensor
    keep: torch.Tensor
    changed_source: list[int] = field(default_factory=list)
    changed_target: list[int] = field(default_factory=list)


def align_tokens(
    source: Sequence[Word], target: Sequence[Word], windows: int, mode: AlignmentMode = "auto"
) -> TokenAlignment:
    """Align the target prompt's words with the source's, over ``windows`` windows.

    ``replace`` (word swap) pairs word k with word k and needs as many words on
    both sides. ``refine`` matches equal words (longest common subsequence) and
    treats every other target word as new. ``auto`` is ``refine``, except that a
    run of changed words replaced by as many words is swapped word for word.
    """
    if mode == "replace":
        if len(source) != len(target):
            raise InvalidInputError(
                f"a word swap needs prompts with the same number of words; the source has {len(source)} "
                f"and the target {len(target)}. Use alignment='refine' or 'auto'."
            )
        ops = [("equal" if s == t else "replace", k, k + 1, k, k + 1) for k, (s, t) in enumerate(zip(source, target))]
    elif mode in ("auto", "refine"):
        ops = SequenceMatcher(None, list(source), list(target), autojunk=False).get_opcodes()
    else:
        raise InvalidInputError(f"unknown alignment {mode!r}; expected 'auto', 'replace' or 'refine'")

    length = windows * SPAN
    out = TokenAlignment(torch.zeros(length, length), torch.ones(length))
    src_starts, tgt_starts = _starts(source), _starts(target)
    for tag, i1, i2, j1, j2 in ops:
        src_pos = [position(k) for k in range(src_starts[i1], src_starts[i2])]
        tgt_pos = [position(k) for k in range(tgt_starts[j1], tgt_starts[j2])]
        if tag != "equal":
            out.changed_source += src_pos
            out.changed_target += tgt_pos
        if tag == "equal" or (tag == "replace" and mode != "refine" and i2 - i1 == j2 - j1):
            for s, t in zip(range(i1, i2), range(j1, j2)):
                _map_word(out.mapper, range(src_starts[s], src_starts[s + 1]), range(tgt_starts[t], tgt_starts[t + 1]))
        else:
            out.keep[tgt_pos] = 0.0
    _map_specials(out.mapper, src_starts[-1], tgt_starts[-1], windows)
    return out


def _starts(words: Sequence[Word]) -> list[int]:
    """Token index where each word starts, plus the total."""
    return list(accumulate((len(w) for w in words), initial=0))


def _map_word(mapper: torch.Tensor, src: range, tgt: range) -> None:
    """Token to token if the words are as long, else each target token takes the source word's mean."""
    if len(src) == len(tgt):
        for s, t in zip(src, tgt):
            mapper[position(s), position(t)] = 1.0
    else:
        for t in tgt:
            mapper[[position(s) for s in src], position(t)] = 1.0 / len(src)


def _map_specials(mapper: torch.Tensor, n_src: int, n_tgt: int, windows: int) -> None:
    """Each window's begin token to the source window's, and end/padding positions in order."""
    for w in range(windows):
        mapper[w * SPAN, w * SPAN] = 1.0
        src_text = min(max(n_src - w * WINDOW, 0), WINDOW)
        tgt_text = min(max(n_tgt - w * WINDOW, 0), WINDOW)
        src_tail = range(w * SPAN + 1 + src_text, (w + 1) * SPAN)
        for k, t in enumerate(range(w * SPAN + 1 + tgt_text, (w + 1) * SPAN)):
            mapper[src_tail[min(k, len(src_tail) - 1)], t] = 1.0


def token_weights(
    target: Sequence[int], weights: Mapping[str, float], tokenize: Callable[[str], Sequence[int]], windows: int
) -> torch.Tensor:
    """Per-position attention weights (L): each phrase's tokens, wherever it occurs in ``target``, get its weight."""
    out = torch.ones(windows * SPAN)
    for phrase, weight in weights.items():
        ids = tuple(tokenize(phrase))
        n = len(ids)
        hits = [k for k in range(len(target) - n + 1) if n and tuple(target[k : k + n]) == ids]
        if not hits:
            raise InvalidInputError(f"cannot re-weight {phrase!r}: it is not in the target prompt")
        for k in hits:
            out[[position(i) for i in range(k, k + n)]] = weight
    return out


@dataclass
class EditControl:
    """What the processors do to the target row during one edit, and the state they share.

    Set ``step``/``source_row``/``target_row`` with :meth:`begin_step` before each
    UNet call (``source_row`` None: no source row in this batch). ``record``
    accumulates, per branch, the attention to the changed words at the latent's
    size (``latent_size``), for :meth:`blend_mask`.
    """

    alignment: TokenAlignment | None = None
    weights: torch.Tensor | None = None
    cross_steps: int = 0
    self_steps: int = 0
    record: bool = False
    latent_size: tuple[int, int] = (0, 0)
    step: int = 0
    source_row: int | None = None
    target_row: int | None = None
    maps: dict[str, torch.Tensor] = field(default_factory=dict)

    def needs_source(self, step: int) -> bool:
        """Whether step ``step`` needs the source branch in the batch."""
        replacing = self.alignment is not None and step < self.cross_steps
        return self.record or replacing or step < self.self_steps

    def begin_step(self, step: int, source_row: int | None, target_row: int | None) -> None:
        self.step, self.source_row, self.target_row = step, source_row, target_row

    def blend_mask(self, threshold: float) -> torch.Tensor:
        """Where the changed words draw attention so far (1, 1, H, W): 1 to edit, 0 to keep (all 0: no word changed).

        As prompt-to-prompt's local blend: each branch's map, dilated (by a 16th of
        the latent's side), over its peak, thresholded; the union of the two.
        """
        if not self.maps:
            return torch.zeros(1, 1, *self.latent_size)
        dilate = max(1, min(self.latent_size) // 16)
        masks = []
        for m in self.maps.values():
            m = F.max_pool2d(m[None, None], 2 * dilate + 1, stride=1, padding=dilate)
            peak = m.max()
            masks.append(m / peak > threshold if peak > 0 else torch.zeros_like(m, dtype=torch.bool))
        return torch.stack(masks).any(0).float()

    def add_map(self, branch: str, attention: torch.Tensor) -> None:
        """Accumulate a (h, w) attention map, resized to the latent's size."""
        resized = F.interpolate(attention[None, None].float(), size=self.latent_size, mode="bilinear")[0, 0]
        self.maps[branch] = self.maps.get(branch, 0) + resized


class EditAttnProcessor:
    """Wraps a diffusers attention processor; applies the :class:`EditControl` to the target row."""

    def __init__(self, control: EditControl, original: Any, coarse: bool) -> None:
        self.control = control
        self.original = original
        self.coarse = coarse

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        plan = self._plan(encoder_hidden_states is not None)
        plain = attention_mask is None and hidden_states.ndim == 3 and attn.spatial_norm is attn.group_norm is None
        if plan is None or not plain:  # nothing to do here, or a layer kind SD/SDXL UNets do not have
            return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)

        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        q, k, v = (_heads(attn, proj(x)) for proj, x in ((attn.to_q, hidden_states), (attn.to_k, context),
                                                         (attn.to_v, context)))
        q = q if attn.norm_q is None else attn.norm_q(q)
        k = k if attn.norm_k is None else attn.norm_k(k)
        out = F.scaled_dot_product_attention(q, k, v, scale=attn.scale)
        out[self.control.target_row] = self._target(q, k, v, attn.scale, *plan)
        out = out.transpose(1, 2).reshape(out.shape[0], -1, attn.heads * out.shape[-1])
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor

    def _plan(self, is_cross: bool) -> tuple[bool, bool, torch.Tensor | None, bool] | None:
        """(cross, replace, weights, record) for this call, or None to run the original processor."""
        c = self.control
        if c.target_row is None:
            return None
        has_source = c.source_row is not None
        if not is_cross:
            inject = self.coarse and has_source and c.step < c.self_steps
            return (False, inject, None, False) if inject else None
        replace = c.alignment is not None and has_source and c.step < c.cross_steps
        record = c.record and self.coarse and has_source and c.alignment is not None
        if not (replace or record or c.weights is not None):
            return None
        return True, replace, c.weights, record

    def _target(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
        cross: bool, replace: bool, weights: torch.Tensor | None, record: bool,
    ) -> torch.Tensor:
        """The target row's attention output (heads, queries, dim)."""
        c = self.control
        s, t = c.source_row, c.target_row
        if record:
            self._record(q, k, scale)
        if not cross:  # self-attention injection: the source's maps over the target's values
            return F.scaled_dot_product_attention(q[s], k[s], v[t], scale=scale)
        w = torch.ones(v.shape[2], dtype=v.dtype, device=v.device) if weights is None else weights.to(v)
        if not replace:
            return F.scaled_dot_product_attention(q[t], k[t], v[t] * w[:, None], scale=scale)
        keep = c.alignment.keep.to(v)
        mapped = c.alignment.mapper.to(v) @ (v[t] * (keep * w)[:, None])  # source positions x dim, per head
        out = F.scaled_dot_product_attention(q[s], k[s], mapped, scale=scale)
        if bool((keep < 1).any()):  # new words keep their own attention
            out = out + F.scaled_dot_product_attention(q[t], k[t], v[t] * ((1 - keep) * w)[:, None], scale=scale)
        return out

    def _record(self, q: torch.Tensor, k: torch.Tensor, scale: float) -> None:
        """Add the source's attention to its changed words and the target's to its own, as maps."""
        c = self.control
        height, width = _layer_size(c.latent_size, q.shape[2])
        for branch, row, columns in (("source", c.source_row, c.alignment.changed_source),
                                     ("target", c.target_row, c.alignment.changed_target)):
            if columns:
                probs = ((q[row] @ k[row].transpose(-1, -2)) * scale).softmax(-1)
                c.add_map(branch, probs[..., columns].sum(-1).mean(0).reshape(height, width))


def _heads(attn: Any, x: torch.Tensor) -> torch.Tensor:
    """(batch, length, heads * dim) -> (batch, heads, length, dim)."""
    return x.view(x.shape[0], -1, attn.heads, x.shape[-1] // attn.heads).transpose(1, 2)


def _layer_size(latent: tuple[int, int], queries: int) -> tuple[int, int]:
    """The (h, w) grid of a layer with ``queries`` positions, the latent downsampled by a power of 2."""
    height, width = latent
    for _ in range(16):
        if height * width == queries:
            return height, width
        height, width = math.ceil(height / 2), math.ceil(width / 2)
    raise ValueError(f"no downsampling of a {latent} latent has {queries} positions")


def coarse_layers(unet: Any) -> set[str]:
    """Processor names of the attention layers at the UNet's coarse resolutions.

    Prompt-to-prompt injects self-attention at 16x16 and 8x8 for SD's 64x64
    latents: layers downsampled 4x or more. A UNet whose attention stops earlier
    (a tiny test UNet) uses its most downsampled attention layers.
    """
    levels = len(unet.config.block_out_channels)

    def factor(name: str) -> int:
        parts = name.split(".")
        if parts[0] == "down_blocks":
            return 2 ** int(parts[1])
        if parts[0] == "up_blocks":
            return 2 ** (levels - 1 - int(parts[1]))
        return 2 ** (levels - 1) if parts[0] == "mid_block" else 1

    factors = {name: factor(name) for name in unet.attn_processors}
    threshold = min(4, max(factors.values(), default=1))
    return {name for name, f in factors.items() if f >= threshold}


@contextmanager
def attention_control(unet: Any, control: EditControl) -> Iterator[EditControl]:
    """Install edit processors around the UNet's own for the duration of the block; restore them after."""
    original = unet.attn_processors
    coarse = coarse_layers(unet)
    unet.set_attn_processor({name: EditAttnProcessor(control, proc, name in coarse) for name, proc in original.items()})
    try:
        yield control
    finally:
        unet.set_attn_processor(dict(original))  # set_attn_processor empties the dict it is given
