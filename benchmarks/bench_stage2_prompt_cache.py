"""Stage 2, one epoch: prompts from the cache vs prompts recomputed by the brain each time.

The paper records the MLLM's prompts once instead of running the MLLM every
epoch. This runs one stage-2 epoch on a tiny SD 1.5 stack and a tiny captioner
brain (random weights, up to --new-tokens tokens per description) twice: with
the prompt cache already filled, and with an empty cache (every prompt asked
again). Prints both times and, last, the ratio recomputed / cached.
Run: python benchmarks/bench_stage2_prompt_cache.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from llmga.testing import build_tiny_causal_lm, build_tiny_sd
from llmga.train.stage2 import Stage2Config, train_stage2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp())
    lines = []
    for i in range(args.images):
        Image.new("RGB", (64, 64), (i * 15 % 256, 80, 200)).save(root / f"{i}.png")
        lines.append(json.dumps({"image": f"{i}.png", "caption": f"a square of colour number {i}"}))
    (root / "data.jsonl").write_text("\n".join(lines))
    sd, brain = build_tiny_sd(root / "sd"), build_tiny_causal_lm(root / "lm")

    def epoch(run: str, cache: Path) -> float:
        config = Stage2Config(painter=str(sd), source=str(root / "data.jsonl"), out=str(root / run), brain=str(brain),
                              prompt_cache=str(cache), resolution=64, epochs=1, batch_size=4, save_every=10_000)
        start = time.perf_counter()
        train_stage2(config)
        return time.perf_counter() - start

    epoch("fill", root / "shared.sqlite")  # fills the cache (and warms up)
    cached = epoch("cached", root / "shared.sqlite")
    recomputed = epoch("recomputed", root / "fresh.sqlite")
    print(f"{args.images} images, one epoch, tiny SD 1.5 + tiny captioner, {args.threads} thread(s)")
    print(f"prompts from the cache: {cached:.2f} s; prompts recomputed: {recomputed:.2f} s")
    print(f"ratio: {recomputed / cached:.2f}")


if __name__ == "__main__":
    main()
