"""One text-to-image turn through llmga vs a direct diffusers pipeline call.

Both paint the same prompt with the same components (a tiny SD 1.5 stack from
llmga.testing, where llmga's own overhead weighs the most), the same seed,
steps, guidance and size; the brain is left out (``--no-refine``), so the ratio
is the cost of llmga's conversation, protocol and long-prompt encoder around
the pipeline. Runs alternate and the medians are compared.
Run: python benchmarks/bench_turn.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from llmga.assistant import Assistant
from llmga.painter import TextToImagePainter
from llmga.settings import PaintSettings
from llmga.testing import build_tiny_sd

PROMPT = "a red fox with a small black cat on the snow under the moon, detailed, soft light"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    painter = TextToImagePainter.load(build_tiny_sd(tempfile.mkdtemp()), device="cpu")
    pipe = painter.pipeline
    settings = PaintSettings(seed=0, steps=args.steps, guidance=7.5, width=args.size, height=args.size)

    def via_llmga():
        return Assistant(brain=None, painter=painter, paint=settings).generate(PROMPT, refine=False)

    def direct():
        generator = torch.Generator("cpu").manual_seed(settings.seed)
        return pipe(prompt=PROMPT, num_inference_steps=settings.steps, guidance_scale=settings.guidance,
                    width=settings.width, height=settings.height, generator=generator)

    same = via_llmga().paintings[0].images[0].tobytes() == direct().images[0].tobytes()
    times = {"llmga": [], "diffusers": []}
    for _ in range(args.repeats):
        for name, fn in (("llmga", via_llmga), ("diffusers", direct)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    t_llmga, t_direct = statistics.median(times["llmga"]), statistics.median(times["diffusers"])
    print(f"tiny SD 1.5, {args.steps} steps, {args.size}x{args.size}, {args.threads} thread(s), "
          f"median of {args.repeats}; identical images: {same}")
    print(f"llmga turn {t_llmga * 1000:.1f} ms, direct diffusers call {t_direct * 1000:.1f} ms")
    print(f"ratio: {t_llmga / t_direct:.3f}")


if __name__ == "__main__":
    main()
