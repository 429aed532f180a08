"""CLIP-layout BPE tokenizers over a chosen word list, written in the standard on-disk format.

Used for the miniature world's text encoder (every world word is one token)
and for the tiny test stacks. The result is a real ``transformers.CLIPTokenizer``
with CLIP's 77-token context, so pipelines load it exactly as they load SD's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CLIP_BOS, CLIP_EOS = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def _bpe(pieces: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Apply BPE merges (lowest rank first) to a word's pieces."""
    while len(pieces) > 1:
        pairs = [(ranks.get(pair, len(ranks)), i) for i, pair in enumerate(zip(pieces, pieces[1:]))]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        pieces = pieces[:i] + [pieces[i] + pieces[i + 1]] + pieces[i + 2 :]
    return pieces


def _clip_vocab_and_merges(words: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A CLIP-layout BPE vocabulary in which each of ``words`` is one token.

    Layout as in CLIP: the 256 byte characters, the same with ``</w>``, one
    entry per merge, then the start and end tokens. Merges are added word by
    word after applying the earlier ones, so every word encodes to one token.
    """
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars]
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in words:
        pieces = _bpe([*word[:-1], word[-1] + "</w>"], ranks)
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            pieces = [pair[0] + pair[1], *pieces[2:]]
            if pieces[0] not in tokens:
                tokens.append(pieces[0])
    tokens += [CLIP_BOS, CLIP_EOS]
    return {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}, merges


def write_clip_tokenizer(out: str | Path, words: Sequence[str], pad_token: str = CLIP_EOS) -> Any:
    """Write a ``CLIPTokenizer`` in which each of ``words`` is one token into ``out``; return it.

    bos is ``<|startoftext|>``, eos and unk ``<|endoftext|>``, pad ``pad_token``
    (``<|endoftext|>`` as in SD 1.x; SD 2.x pads with ``"!"``), ``model_max_length`` 77.
    Words outside the list fall back to pieces and characters.
    """
    vocab, merges = _clip_vocab_and_merges(list(words))
    return _write(Path(out), vocab, merges, pad_token)


def write_openai_clip_tokenizer(out: str | Path, merges_lines: Sequence[str], pad_token: str = CLIP_EOS) -> Any:
    """Write OpenAI CLIP's own tokenizer (SD's ``tokenizer``; SDXL's ``tokenizer_2`` pads with ``"!"``).

    ``merges_lines`` are CLIP's 48,894 BPE merges ("a b" per line); the vocabulary
    is CLIP's layout over them: 256 byte characters, the same with ``</w>``, one
    token per merge, then the start and end tokens (49,408 entries).
    """
    byte_chars = list(_bytes_to_unicode().values())
    merges = [tuple(line.split()) for line in merges_lines if line]
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + [CLIP_BOS, CLIP_EOS]
    return _write(Path(out), {tok: i for i, tok in enumerate(tokens)}, merges, pad_token)


def _write(out: Path, vocab: dict[str, int], merges: Sequence[tuple[str, str]], pad_token: str) -> Any:
    from transformers import CLIPTokenizer

    out.mkdir(parents=True, exist_ok=True)
    vocab_file, merges_file = out / "vocab.json", out / "merges.txt"
    vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    # The paths must be positional: in transformers 5 the vocab_file=/merges_file=
    # keywords are silently ignored and give a 2-token tokenizer.
    tokenizer = CLIPTokenizer(str(vocab_file), str(merges_file), bos_token=CLIP_BOS, eos_token=CLIP_EOS,
                              pad_token=pad_token, unk_token=CLIP_EOS, model_max_length=77)
    tokenizer.save_pretrained(out)
    return tokenizer
