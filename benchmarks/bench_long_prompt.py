"""Encoding a 300-token prompt vs a 75-token prompt (prompt + empty negative, as a turn does).

The text encoder has Stable Diffusion 1.5's CLIP ViT-L/14 text-tower shape
(768 wide, 12 layers, random weights: speed does not depend on the values),
or with ``--tower tiny`` the 32-wide test tower, where per-call overhead
dominates; the tokenizer is llmga's tiny CLIP tokenizer. Prints the time ratio with
windows encoded in one batched call (llmga's way), and with windows encoded
one call at a time, for comparison. Run: python benchmarks/bench_long_prompt.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import CLIPTextConfig, CLIPTextModel

from llmga.painter.long_prompt import LongPromptEncoder
from llmga.testing import build_tiny_clip_tokenizer


TOWERS = {
    "clip-l": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
    "tiny": dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4),
}


def prompt_of(tokenizer, n_tokens: int) -> str:
    """A prompt of exactly ``n_tokens`` tokens (one word per token in the tiny vocabulary)."""
    words = "a big red fox with a small black cat on the snow under the moon near a tall tree".split()
    text = " ".join(words[i % len(words)] for i in range(n_tokens))
    assert len(tokenizer(text, add_special_tokens=False, verbose=False).input_ids) == n_tokens
    return text


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--tower", choices=sorted(TOWERS), default="clip-l")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = build_tiny_clip_tokenizer(tempfile.mkdtemp())
    config = CLIPTextConfig(vocab_size=len(tokenizer), max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                            **TOWERS[args.tower])
    encoder = CLIPTextModel(config).eval()
    short, long = prompt_of(tokenizer, 75), prompt_of(tokenizer, 300)
    print(f"prompts of 75 and 300 tokens, empty negative prompt; {args.tower} text tower, "
          f"{args.threads} thread(s), median of {args.repeats}")
    results = {}
    for batched in (False, True):
        enc = LongPromptEncoder([tokenizer], [encoder], batched=batched)
        enc.encode(long)  # warm up
        t_short = median_time(lambda: enc.encode(short), args.repeats)
        t_long = median_time(lambda: enc.encode(long), args.repeats)
        results[batched] = t_long / t_short
        label = "batched windows" if batched else "one window per call"
        print(f"{label:20s}: 75 tokens {t_short * 1000:7.1f} ms, 300 tokens {t_long * 1000:7.1f} ms, "
              f"ratio {t_long / t_short:.2f}")
    print(f"ratio: {results[True]:.2f}")


if __name__ == "__main__":
    main()
