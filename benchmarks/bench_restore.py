"""What restoration costs beside the painting it repairs, measured side by side in one run.

1. Full size: a 512x512 outpainting (a 384x512 picture grown 128 px right) by a
   Stable Diffusion 1.5-size inpainting pipeline with random weights
   (:mod:`llmga.testing.fullsize`, about 4.5 GB in float32), ``--steps`` steps
   (50) at guidance 7.5, against restoring that outpainting with DiffRIR at the
   released size (random weights: n_encoder_res=9, dim=64, blocks [13,1,1,1],
   13 refinement blocks, 25M parameters; one 512x512 tile).
2. The world: outpainting a 32x32 world picture (wide borders) with the shipped
   ``world-inpaint`` painter at the offline default's 20 steps, against restoring
   it with the world restorer (``--world-restorer``, default the shipped
   ``world-restore``). The target: restoration costs at most 10% of the painting.

Each job runs ``--repeats`` times alternating with the other; medians are
compared. Speed does not depend on the weights' values. The last line is the
world's ratio (restoration / painting).
Run: python benchmarks/bench_restore.py [--steps 50] [--repeats 3] [--threads 1] [--skip-full]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from llmga.painter.inpaint import InpaintPainter
from llmga.painter.outpaint import outpaint, outpaint_canvas
from llmga.restore import RELEASED, Restorer, StageTwo
from llmga.settings import PaintSettings


def timed(job) -> float:
    start = time.perf_counter()
    job()
    return time.perf_counter() - start


def side_by_side(jobs: dict, repeats: int) -> dict[str, float]:
    """Median seconds per job, the jobs alternating."""
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            times[name].append(timed(job))
    return {name: statistics.median(values) for name, values in times.items()}


def full_size(steps: int, repeats: int) -> float:
    from llmga.testing.fullsize import write_random_pipeline

    folder = Path(tempfile.mkdtemp()) / "sd15-inpaint"
    write_random_pipeline("sd15-inpaint", folder)
    painter = InpaintPainter.load(folder, device="cpu")
    picture = Image.effect_noise((384, 512), 64).convert("RGB")
    canvas = outpaint_canvas(picture, right=128)
    settings = PaintSettings(steps=steps, guidance=7.5, seed=0)
    painted = outpaint(painter, canvas, "a wide beach at dawn", settings).raw[0]
    restorer = Restorer(StageTwo(RELEASED).eval(), name="DiffRIR (released size, random weights)")
    times = side_by_side({
        f"SD 1.5-size outpainting, 512x512, {steps} steps": lambda: outpaint(painter, canvas, "a wide beach at dawn",
                                                                            settings),
        "DiffRIR restoration (released size), 512x512": lambda: restorer.restore(painted, canvas.image, canvas.mask),
    }, repeats)
    for name, seconds in times.items():
        print(f"{name}: {seconds:.2f} s")
    ratio = times["DiffRIR restoration (released size), 512x512"] / times[next(iter(times))]
    print(f"full size, restoration / painting: {ratio:.4f}  (peak memory {peak_gb():.1f} GB)")
    return ratio


def world(restorer_spec: str, repeats: int) -> float:
    from llmga.masks import outpaint_mask, random_outpaint_sides
    from llmga.world.render import render
    from llmga.world.scene import sample_scene

    painter = InpaintPainter.load("world-inpaint", device="cpu")
    restorer = Restorer.load(restorer_spec)
    rng = random.Random(0)
    pictures = [render(sample_scene(rng, 3, min_objects=1), 32) for _ in range(repeats)]
    masks = [outpaint_mask((32, 32), random_outpaint_sides(rng, "wide")) for _ in range(repeats)]
    settings = PaintSettings(steps=20, guidance=4.0, seed=0)
    paintings = [painter.paint(p, m, "", settings).raw[0] for p, m in zip(pictures, masks)]
    index = iter(range(10**9))
    times = side_by_side({
        "world outpainting (world-inpaint, 20 steps), 32x32": lambda: painter.paint(pictures[0], masks[0], "",
                                                                                    settings),
        f"world restoration ({restorer_spec}), 32x32": lambda: restorer.restore(
            paintings[next(index) % repeats], pictures[0], masks[0]),
    }, repeats)
    for name, seconds in times.items():
        print(f"{name}: {seconds * 1000:.1f} ms")
    painting, restoring = times.values()
    print(f"world, restoration / painting: {restoring / painting:.4f} (target <= 0.10)")
    return restoring / painting


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50, help="steps of the full-size outpainting")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--world-repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--world-restorer", default="world-restore")
    parser.add_argument("--skip-full", action="store_true", help="only the world (the full size takes minutes)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}; not run on a GPU")
    if not args.skip_full:
        full = full_size(args.steps, args.repeats)
        print(f"ratio (full size): {full:.4f}")
    print(f"ratio: {world(args.world_restorer, args.world_repeats):.4f}")


if __name__ == "__main__":
    main()
