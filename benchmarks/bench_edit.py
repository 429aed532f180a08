"""An edit (inversion + edited generation) vs a plain text-to-image generation on the same pipeline.

Both run the same steps, guidance and size on one pipeline: a tiny SD 1.5
stack from llmga.testing by default, or ``--model DIR`` (any SD 1.x/2.x/XL
directory). The edit takes the image the text-to-image call paints, with the
default settings of ``--method`` (ddpm: edit-friendly DDPM inversion, source
guidance 3.5; ddim: DDIM inversion + Direct Inversion + prompt-to-prompt).
Runs alternate and the medians are compared; the last line is the edit's time
over the generation's.
Run: python benchmarks/bench_edit.py [--method ddim] [--steps 50] [--size 64] [--repeats 9]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from llmga.painter import TextToImagePainter

from llmga.settings import PaintSettings
from llmga.painter.edit import EditPainter, EditSettings
from llmga.testing import build_tiny_sd

SOURCE = "a red cat sitting on the grass in a sunny garden, detailed, soft light"
TARGET = "a black dog sitting on the grass in a sunny garden, detailed, soft light"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a diffusers SD pipeline directory (default: a tiny SD 1.5 stack)")
    parser.add_argument("--method", choices=["ddpm", "ddim"], default="ddpm")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    painter = TextToImagePainter.load(args.model or build_tiny_sd(tempfile.mkdtemp()), device="cpu")
    editor = EditPainter.from_painter(painter)
    paint = PaintSettings(seed=0, steps=args.steps, guidance=7.5, width=args.size, height=args.size)
    edit = EditSettings(method=args.method, steps=args.steps, target_guidance=7.5, resolution=args.size)
    image = painter.paint(SOURCE, paint).images[0]

    jobs = {
        "text-to-image": lambda: painter.paint(SOURCE, paint),
        "edit": lambda: editor.edit(image, SOURCE, TARGET, edit),
    }
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for name, job in jobs.items():  # warm-up
        job()
    for _ in range(args.repeats):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    t_paint, t_edit = (statistics.median(times[name]) for name in ("text-to-image", "edit"))
    print(f"{args.model or 'tiny SD 1.5'}, {args.steps} steps, {args.size}x{args.size}, {args.threads} thread(s), "
          f"median of {args.repeats}; edit route {args.method}")
    print(f"text-to-image {t_paint * 1000:.1f} ms, edit (inversion + edited generation) {t_edit * 1000:.1f} ms")
    print(f"ratio: {t_edit / t_paint:.3f}")


if __name__ == "__main__":
    main()
